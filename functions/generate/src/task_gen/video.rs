//! Videos: tracks of boxes over key frames, with boxes interpolated between them.

use super::content::Content;
use super::{borrowed, TaskGen};
use labelport_model::{Annotation, AnnotationKind, BoundingBox};
use std::borrow::Cow;

impl TaskGen<'_> {
    /// A 1280 x 720 video with one to three tracks.
    pub(super) fn video(&mut self) -> Content {
        let mut asset = self.asset();
        let (width, height) = (1280u32, 720u32);
        asset.width = Some(width);
        asset.height = Some(height);
        // At least 120 frames: a track spans at most 30 x 3 frames.
        let frames = self.rng.range(120, 600) as u32;
        asset.frame_count = Some(frames);
        let mut annotations = Vec::new();
        for track in 1..=self.rng.range(1, 3) {
            let label = self.rng.word(self.spec.classes);
            let track_id = format!("track-{track}");
            let step = self.rng.range(10, 30) as u32;
            let keys = self.rng.range(2, 4) as u32;
            let first = self.rng.below(u64::from(frames - step * (keys - 1))) as u32;
            // Box corners in tenths of pixels at each key frame; interpolated midway.
            let (w, h) = (u64::from(width) * 10, u64::from(height) * 10);
            let mut previous: Option<(u32, [u64; 4])> = None;
            for k in 0..keys {
                let frame = first + k * step;
                let geometry = match previous {
                    None => {
                        let bw = self.rng.range(w / 20, w / 4);
                        let bh = self.rng.range(h / 20, h / 4);
                        [self.rng.below(w - bw), self.rng.below(h - bh), bw, bh]
                    }
                    // The object moves up to a tenth of the frame and grows or
                    // shrinks by up to a tenth between key frames.
                    Some((_, [x, y, bw, bh])) => {
                        let bw = (bw * self.rng.range(90, 110) / 100).clamp(w / 20, w / 4);
                        let bh = (bh * self.rng.range(90, 110) / 100).clamp(h / 20, h / 4);
                        let x = (x + self.rng.range(0, w / 5)).saturating_sub(w / 10);
                        let y = (y + self.rng.range(0, h / 5)).saturating_sub(h / 10);
                        [x.min(w - bw), y.min(h - bh), bw, bh]
                    }
                };
                if let Some((before, g0)) = previous {
                    if self.rng.chance(700) {
                        let mid = [0, 1, 2, 3].map(|i| (g0[i] + geometry[i]) / 2);
                        annotations.push(self.video_box(
                            label,
                            &track_id,
                            (before + frame) / 2,
                            false,
                            mid,
                        ));
                    }
                }
                annotations.push(self.video_box(label, &track_id, frame, true, geometry));
                previous = Some((frame, geometry));
            }
        }
        Content::unrelated(asset, annotations)
    }

    fn video_box(
        &mut self,
        label: &'static str,
        track: &str,
        frame: u32,
        key_frame: bool,
        [x, y, width, height]: [u64; 4],
    ) -> Annotation<'static> {
        let mut a = self.annotation(AnnotationKind::Box);
        a.label = Some(borrowed(label));
        let tenth = |v: u64| v as f64 / 10.0;
        a.bbox = Some(BoundingBox {
            x: tenth(x),
            y: tenth(y),
            width: tenth(width),
            height: tenth(height),
            rotation: None,
        });
        a.frame = Some(frame);
        a.key_frame = Some(key_frame);
        a.track = Some(Cow::Owned(track.to_owned()));
        a.attributes = self.attributes();
        a
    }
}
