#!/usr/bin/env python3
"""Checks the image formats with readers labelport did not write, against the generated
tasks: pycocotools for COCO, globox for YOLO and VOC, xml.etree and PyYAML.

    check_vision.py coco|yolo|yolo-segment|voc SOURCE PROJECT_DIR
        [--report REPORT] [--key-frames] [--states a,b] [--stages X,Y]

SOURCE (and REPORT, the errors report) is a file path or a URL. The expected shapes are
computed here from the generated tasks: each box or polygon clipped to its image
(Sutherland-Hodgman, below), a rotated box turned about its top-left corner. Checked:

- COCO: pycocotools loads and indexes the file; one image per expected image, named by
  task (video: `_{frame:06}`), with its size; categories numbered from 1 in the label
  schema's order; each annotation's category, bbox (within 0.01 px), area, and
  `annToMask` area against the clipped polygon's area (within 1%, or half a pixel along
  the outline for a small shape, and in total within 0.1%).
- YOLO: data.yaml (PyYAML) names the classes in schema order; every expected image has
  its label file, an empty one without objects; globox reads each file and its boxes
  match the clipped boxes within half a pixel; with segment, the outlines' areas too.
- VOC: xml.etree parses every file; globox reads them; `filename` and `size` match;
  boxes (1-based corners) match within half a pixel (plus the 1-based shift).
- With --label-studio, the output came from the project's Label Studio export
  (`labelport generate --label-studio`, `labelport convert`): shapes are expected as
  Label Studio's editor keeps them, inside the image.
- With --report: the errors report lists exactly the annotations the format cannot hold
  (points; polygons in VOC and YOLO detect; shapes outside their image) by task and id.

Prints "N images, M annotations match" or names the first difference and exits 1.
"""
import argparse
import gzip
import io
import json
import math
import os
import sys
import tempfile
import xml.etree.ElementTree as et
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_export import fail, fetch, final_annotations, tasks  # noqa: E402


def corners(b):
    turn = math.radians(b.get("rotation") or 0.0)
    c, s = math.cos(turn), math.sin(turn)
    local = [(0, 0), (b["width"], 0), (b["width"], b["height"]), (0, b["height"])]
    return [(b["x"] + dx * c - dy * s, b["y"] + dx * s + dy * c) for dx, dy in local]


def clip(points, w, h):
    """The polygon cut to the image (Sutherland-Hodgman)."""
    def edge(points, inside, cross):
        out = []
        for i, p in enumerate(points):
            q = points[(i + 1) % len(points)]
            if inside(p) and inside(q):
                out.append(q)
            elif inside(p):
                out.append(cross(p, q))
            elif inside(q):
                out += [cross(p, q), q]
        return out

    def at_x(x):
        return lambda p, q: (x, p[1] + (q[1] - p[1]) * (x - p[0]) / (q[0] - p[0]))

    def at_y(y):
        return lambda p, q: (p[0] + (q[0] - p[0]) * (y - p[1]) / (q[1] - p[1]), y)

    for inside, cross in [
        (lambda p: p[0] >= 0, at_x(0)), (lambda p: p[0] <= w, at_x(w)),
        (lambda p: p[1] >= 0, at_y(0)), (lambda p: p[1] <= h, at_y(h)),
    ]:
        if points:
            points = edge(points, inside, cross)
    return points


def as_label_studio_holds(a, w, h):
    """Label Studio's editor keeps shapes inside the image: an unrotated box past an
    edge is cut at it, a polygon's or point's coordinates are clamped, and a box wholly
    outside does not exist."""
    a = dict(a)
    if a["type"] == "box" and not (a["bbox"].get("rotation") or 0):
        b = dict(a["bbox"])
        x1, y1 = min(b["x"] + b["width"], w), min(b["y"] + b["height"], h)
        b["x"], b["y"] = min(max(b["x"], 0), w), min(max(b["y"], 0), h)
        b["width"], b["height"] = x1 - b["x"], y1 - b["y"]
        if b["width"] <= 0 or b["height"] <= 0:
            return None
        a["bbox"] = b
    elif a["type"] in ("polygon", "point"):
        a["points"] = [[min(max(x, 0), w), min(max(y, 0), h)] for x, y in a["points"]]
    return a


def area(points):
    n = len(points)
    return abs(sum(points[i][0] * points[(i + 1) % n][1] - points[(i + 1) % n][0] * points[i][1]
                   for i in range(n))) / 2


# Each expected image's asset URI, by image name: COCO's coco_url and VOC's <path> must
# name it, so a training script finds the pixels.
ASSET_URL = {}


def expected(project_dir, args, fmt):
    """[(name, width, height, [(label, outline, area, annotation)])], refused (task, id)."""
    project = json.load(open(os.path.join(project_dir, "project.json")))
    video = project["mode"] == "video"
    images, refused = [], set()
    for task in tasks(project_dir):
        if task.get("preview") or task["state"] not in args.states or task["stage"] not in args.stages:
            continue
        asset = task["asset"]
        w, h = asset["width"], asset["height"]
        file = asset["url"].split("?")[0].rsplit("/", 1)[-1]
        ext = "." + file.rsplit(".", 1)[1] if "." in file[1:] else ""
        frames = {}
        for a in final_annotations(task):
            if a["type"] not in ("box", "polygon", "point"):
                continue
            if args.label_studio:
                a = as_label_studio_holds(a, w, h)
                if a is None:
                    continue
            if video and args.key_frames and a.get("keyFrame") is False:
                continue
            frame = a.get("frame") if video else None
            shape = None
            if a["type"] == "point" or (a["type"] == "polygon" and fmt in ("yolo", "voc")):
                refused.add((task["id"], a["id"]))
            else:
                outline = clip(corners(a["bbox"]) if a["type"] == "box" else [tuple(p) for p in a["points"]], w, h)
                if len(outline) < 3 or area(outline) <= 1e-9:
                    refused.add((task["id"], a["id"]))
                else:
                    shape = (a["label"], outline, area(outline), a)
            frames.setdefault(frame, [])
            if shape:
                frames[frame].append(shape)
        if args.label_studio and not frames:
            # Label Studio knows an image's size only from its regions' results: an
            # image without any is left out (and reported), having no size.
            continue
        if video:
            for frame in sorted(frames):
                images.append((f"{task['id']}_{frame:06d}.jpg", w, h, frames[frame]))
                ASSET_URL[images[-1][0]] = asset["url"]
        else:
            images.append((task["id"] + ext, w, h, frames.get(None, [])))
            ASSET_URL[images[-1][0]] = asset["url"]
    return project, images, refused


def perimeter(points):
    return sum(math.dist(points[i], points[(i + 1) % len(points)]) for i in range(len(points)))


def bounds(outline):
    xs, ys = [p[0] for p in outline], [p[1] for p in outline]
    return min(xs), min(ys), max(xs), max(ys)


def near(got, want, tolerance, what):
    if any(abs(g - e) > tolerance for g, e in zip(got, want)):
        fail(f"{what}: {tuple(round(g, 3) for g in got)}, expected {tuple(round(e, 3) for e in want)}")


def check_coco(data, project, images):
    from pycocotools.coco import COCO
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        f.write(data)
        f.flush()
        coco = COCO(f.name)
    classes = project["labels"]["classes"]
    categories = coco.loadCats(coco.getCatIds())
    if [(c["id"], c["name"]) for c in categories] != list(enumerate(classes, 1)):
        fail(f"categories {[(c['id'], c['name']) for c in categories]}, expected the schema's {classes}")
    ids = sorted(coco.getImgIds())
    if ids != list(range(1, len(images) + 1)):
        fail(f"{len(ids)} image ids, expected 1..{len(images)}")
    if sorted(coco.getAnnIds()) != list(range(1, len(coco.getAnnIds()) + 1)):
        fail("annotation ids do not count from 1")
    total_mask, total_area, count = 0, 0.0, 0
    for image_id, (name, w, h, shapes) in zip(ids, images):
        image = coco.loadImgs(image_id)[0]
        if (image["file_name"], image["width"], image["height"]) != (name, w, h):
            fail(f"image {image_id}: {image}, expected {name} {w}x{h}")
        if image.get("coco_url") != ASSET_URL[name]:
            fail(f"image {image_id}: coco_url {image.get('coco_url')!r}, expected the asset {ASSET_URL[name]!r}")
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
        if len(anns) != len(shapes):
            fail(f"{name}: {len(anns)} annotations, expected {len(shapes)}")
        for ann, (label, outline, want_area, source) in zip(anns, shapes):
            if classes[ann["category_id"] - 1] != label:
                fail(f"{name}: category {ann['category_id']}, expected {label}")
            x0, y0, x1, y1 = bounds(outline)
            near(ann["bbox"], (x0, y0, x1 - x0, y1 - y0), 0.01, f"{name} {source['id']} bbox")
            near([ann["area"]], [want_area], max(0.01, want_area * 1e-6), f"{name} {source['id']} area")
            # A mask counts whole pixels: along the outline it may be off by up to half
            # a pixel either way, which for a small shape is more than 1%.
            mask = int(coco.annToMask(ann).sum())
            if abs(mask - want_area) > max(0.01 * want_area, 0.5 * perimeter(outline)):
                fail(f"{name} {source['id']}: annToMask covers {mask} px, the polygon {want_area:.1f}")
            if ann["iscrowd"] != 0:
                fail(f"{name}: iscrowd {ann['iscrowd']}")
            total_mask += mask
            total_area += want_area
            count += 1
    if count and abs(total_mask - total_area) > 0.001 * total_area:
        fail(f"annToMask covers {total_mask} px in all, the polygons {total_area:.0f}")
    return count


def unzip(data, folder):
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        if z.testzip() is not None:
            fail("a ZIP entry is corrupt")
        names = z.namelist()
        if len(names) != len(set(names)):
            fail("the ZIP holds an entry twice")
        z.extractall(folder)
        return names


def check_yolo(data, project, images, segment):
    """Label files under labels/train and labels/val, each task's images in one split,
    data.yaml naming both (PyYAML, its documented keys), every box read back by globox,
    and the unzipped dataset, with placeholder images, loaded split by split by
    supervision's DetectionDataset.from_yolo as users load it."""
    import globox
    import yaml
    classes = project["labels"]["classes"]
    with tempfile.TemporaryDirectory() as folder:
        names = unzip(data, folder)
        spec = yaml.safe_load(open(os.path.join(folder, "data.yaml"), encoding="utf-8"))
        if spec["names"] != dict(enumerate(classes)) or spec["nc"] != len(classes):
            fail(f"data.yaml names {spec['names']}, expected {classes}")
        if (spec["path"], spec["train"], spec["val"]) != (".", "images/train", "images/val"):
            fail(f"data.yaml: path {spec['path']!r}, train {spec['train']!r}, val {spec['val']!r}")
        if open(os.path.join(folder, "classes.txt"), encoding="utf-8").read().splitlines() != classes:
            fail("classes.txt does not list the schema's classes")
        split_of = {}
        for n in names:
            parts = n.split("/")
            if parts[0] == "labels":
                if len(parts) != 3 or parts[1] not in ("train", "val"):
                    fail(f"{n} is not under labels/train or labels/val")
                split_of[parts[2][:-len(".txt")]] = parts[1]
        stems = [name.rsplit(".", 1)[0] if "." in name else name for name, *_ in images]
        if sorted(split_of) != sorted(stems):
            fail(f"{len(split_of)} label files, expected {len(stems)}: {sorted(set(split_of) ^ set(stems))[:3]}")
        task_split = {}
        for stem in stems:
            task = stem.rsplit("_", 1)[0] if project["mode"] == "video" else stem
            if task_split.setdefault(task, split_of[stem]) != split_of[stem]:
                fail(f"task {task} has images in both train and val")
        val = sum(1 for s in task_split.values() if s == "val")
        if len(task_split) >= 200 and not 0.05 <= val / len(task_split) <= 0.15:
            fail(f"{val} of {len(task_split)} tasks in val, expected about a tenth")
        count = 0
        for (name, w, h, shapes), stem in zip(images, stems):
            path = os.path.join(folder, "labels", split_of[stem], stem + ".txt")
            if segment:
                read = globox.Annotation.from_yolo_seg(path, image_id=name, image_size=(w, h))
            else:
                read = globox.Annotation.from_yolo_darknet(path, image_id=name, image_size=(w, h))
            boxes = read.boxes
            if len(boxes) != len(shapes):
                fail(f"{name}: {len(boxes)} boxes, expected {len(shapes)}")
            lines = open(path, encoding="utf-8").read().splitlines()
            for box, line, (label, outline, want_area, source) in zip(boxes, lines, shapes):
                if classes[int(box.label)] != label:
                    fail(f"{name}: class {box.label}, expected {label}")
                near(box.ltrb, bounds(outline), 0.5, f"{name} {source['id']}")
                if segment:
                    values = [float(v) for v in line.split()[1:]]
                    points = [(values[i] * w, values[i + 1] * h) for i in range(0, len(values), 2)]
                    if abs(area(points) - want_area) > max(0.5, 0.01 * want_area):
                        fail(f"{name} {source['id']}: outline area {area(points):.1f}, expected {want_area:.1f}")
                count += 1
        if len(images) <= SUPERVISION_IMAGES:
            load_with_supervision(folder, images, stems, split_of, classes, segment)
        return count


# Placeholder images cost time to write: supervision reads the exports of up to this
# many images (the API tests'); the CLI's large export is read by globox alone.
SUPERVISION_IMAGES = 3000


def load_with_supervision(folder, images, stems, split_of, classes, segment):
    """Each split, with an image of the right size beside every label file, loads in
    supervision as the data.yaml says, every box where labelport put it."""
    import supervision
    from PIL import Image

    for (name, w, h, _), stem in zip(images, stems):
        target = os.path.join(folder, "images", split_of[stem], name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        Image.new("RGB", (w, h)).save(target)
    expected = {name: shapes for name, _, _, shapes in images}
    for split in ("train", "val"):
        if not os.path.isdir(os.path.join(folder, "labels", split)):
            continue
        dataset = supervision.DetectionDataset.from_yolo(
            images_directory_path=os.path.join(folder, "images", split),
            annotations_directory_path=os.path.join(folder, "labels", split),
            data_yaml_path=os.path.join(folder, "data.yaml"),
            force_masks=segment,
        )
        if dataset.classes != classes:
            fail(f"supervision reads classes {dataset.classes}, expected {classes}")
        want = sorted(stem for stem in stems if split_of[stem] == split)
        if len(dataset) != len(want):
            fail(f"supervision loads {len(dataset)} {split} images, expected {len(want)}")
        for path, _, detections in dataset:
            shapes = expected[os.path.basename(path)]
            if len(detections) != len(shapes):
                fail(f"supervision: {path} has {len(detections)} boxes, expected {len(shapes)}")
            for xyxy, class_id, (label, outline, _, source) in zip(detections.xyxy, detections.class_id, shapes):
                if classes[int(class_id)] != label:
                    fail(f"supervision: {path} {source['id']} class {class_id}, expected {label}")
                near(xyxy, bounds(outline), 1.0, f"supervision {path} {source['id']}")


def check_voc(data, project, images):
    import globox
    with tempfile.TemporaryDirectory() as folder:
        names = unzip(data, folder)
        xmls = sorted(n for n in names if n.startswith("Annotations/"))
        if len(xmls) != len(images):
            fail(f"{len(xmls)} annotation files, expected {len(images)}")
        listed = open(os.path.join(folder, "ImageSets", "Main", "default.txt"), encoding="utf-8").read().split()
        if listed != [name.rsplit(".", 1)[0] for name, *_ in images]:
            fail("ImageSets/Main/default.txt does not list the images in order")
        for name, *_ in images:
            stem = name.rsplit(".", 1)[0]
            path = et.parse(os.path.join(folder, "Annotations", stem + ".xml")).findtext("path")
            if path != ASSET_URL[name]:
                fail(f"{stem}.xml: <path> {path!r}, expected the asset {ASSET_URL[name]!r}")
        read = globox.AnnotationSet.from_pascal_voc(os.path.join(folder, "Annotations"))
        count = 0
        for name, w, h, shapes in images:
            got = read[name]
            if got.image_size != (w, h):
                fail(f"{name}: size {got.image_size}, expected {(w, h)}")
            if len(got.boxes) != len(shapes):
                fail(f"{name}: {len(got.boxes)} boxes, expected {len(shapes)}")
            for box, (label, outline, _, source) in zip(got.boxes, shapes):
                if box.label != label:
                    fail(f"{name}: {box.label!r}, expected {label!r}")
                xmin, ymin, xmax, ymax = box.ltrb
                near((xmin - 1, ymin - 1, xmax, ymax), bounds(outline), 0.5, f"{name} {source['id']}")
                count += 1
        return count


def check_report(report, refused):
    listed = set()
    for line in fetch(report).decode("utf-8").splitlines():
        entry = json.loads(line)
        if "annotationId" in entry:
            listed.add((entry["taskId"], entry["annotationId"]))
    if listed != refused:
        fail(f"the errors report lists {len(listed)} annotations, expected {len(refused)}: "
             f"{sorted(listed ^ refused)[:3]}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("format", choices=["coco", "yolo", "yolo-segment", "voc"])
    parser.add_argument("source")
    parser.add_argument("project_dir")
    parser.add_argument("--report")
    parser.add_argument("--key-frames", action="store_true")
    parser.add_argument("--label-studio", action="store_true",
                        help="the export was made from the project's Label Studio export")
    parser.add_argument("--states", default="annotated,validated")
    parser.add_argument("--stages", default="Complete")
    args = parser.parse_args()
    args.states = args.states.split(",")
    args.stages = args.stages.split(",")
    fmt = args.format
    project, images, refused = expected(args.project_dir, args, "coco" if fmt == "yolo-segment" else fmt)
    data = fetch(args.source)
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    elif data[:4] == b"\x28\xb5\x2f\xfd":
        import zstandard
        data = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
    if fmt == "coco":
        count = check_coco(data, project, images)
    elif fmt == "voc":
        count = check_voc(data, project, images)
    else:
        count = check_yolo(data, project, images, fmt == "yolo-segment")
    if args.report:
        check_report(args.report, refused)
    elif refused:
        fail(f"{len(refused)} annotations should have been refused, and no errors report was given")
    if count == 0:
        fail("no annotation was checked")
    print(f"{len(images)} images, {count} annotations match")


if __name__ == "__main__":
    main()
