#!/usr/bin/env python3
"""Holds labelport's reading of a Label Studio export to Label Studio's own: runs
label-studio-sdk's converter on the same export and compares the YOLO boxes.

    check_peer.py yolo LABELPORT_YOLO_ZIP EXPORT_JSON CONFIG_XML [--compat]

With --compat, labelport's ZIP was written with "compat": "label-studio": its label
files must be named by the image's file name, as the converter's are, and its
classes numbered by name, as the converter numbers them.

The converter is given the export's rectangles only (its YOLO writes polygons as
segment lines into detection files, and keypoint configs as pose files). Compared are
the images where the two agree by design: the task has one annotation (of several, the
converter keeps the first, labelport the last: the task's current state), which holds
only unrotated
rectangles (labelport clips and turns rotated boxes; the converter does not), and the
image's file name is unique in the export (the converter names label files by it, so
two such images overwrite each other's). For those, each image's boxes must be the
same, class by name (the converter orders classes by name, labelport by the config),
within 1e-5 of the image. Prints "N images, M boxes agree with label-studio-sdk" or
names the first difference and exits 1.
"""
import io
import json
import os
import re
import sys
import tempfile
import zipfile
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_export import fail  # noqa: E402


def file_name(task):
    return task["data"]["image"].split("?")[0].rsplit("/", 1)[-1]


def main():
    fmt, ours, export, config = sys.argv[1:5]
    compat = "--compat" in sys.argv[5:]
    if fmt != "yolo":
        fail(f"unknown format {fmt}")
    tasks = json.load(open(export, encoding="utf-8"))
    names = Counter(file_name(t) for t in tasks)
    with tempfile.TemporaryDirectory() as work:
        rectangles = []
        for task in tasks:
            task = dict(task)
            task["annotations"] = [
                dict(a, result=[r for r in a["result"] if r.get("type") == "rectanglelabels"])
                for a in task["annotations"]
            ]
            rectangles.append(task)
        peer_export = os.path.join(work, "export.json")
        json.dump(rectangles, open(peer_export, "w", encoding="utf-8"))
        xml = open(config, encoding="utf-8").read()
        xml = re.sub(r"\s*<KeyPointLabels.*?</KeyPointLabels>", "", xml, flags=re.S)
        xml = re.sub(r"\s*<PolygonLabels.*?</PolygonLabels>", "", xml, flags=re.S)
        xml = re.sub(r"\s*<Choices[^>]*perRegion[^>]*>.*?</Choices>", "", xml, flags=re.S)
        from label_studio_sdk.converter import Converter
        out = os.path.join(work, "peer")
        Converter(config=xml, project_dir=None, download_resources=False).convert(
            peer_export, out, "YOLO", is_dir=False)
        peer_classes = open(os.path.join(out, "classes.txt"), encoding="utf-8").read().splitlines()
        with zipfile.ZipFile(ours) as z:
            our_classes = z.read("classes.txt").decode("utf-8").splitlines()
            if compat:
                if our_classes != sorted(our_classes):
                    fail(f"compat classes are not numbered by name: {our_classes}")
                notes = json.loads(z.read("notes.json"))
                if notes["categories"] != [{"id": i, "name": n} for i, n in enumerate(our_classes)]:
                    fail(f"notes.json does not list classes.txt: {notes['categories']}")
            images = boxes = 0
            for task in tasks:
                annotations = [a for a in task["annotations"] if not a.get("was_cancelled")]
                if len(annotations) != 1 or names[file_name(task)] > 1:
                    continue
                last = annotations[-1]["result"]
                regions = [r for r in last if r.get("type") not in ("choices", "relation")]
                if not regions or any(r["type"] != "rectanglelabels" or r["value"].get("rotation") for r in regions):
                    continue
                stem = file_name(task).rsplit(".", 1)[0]
                with open(os.path.join(out, "labels", stem + ".txt"), encoding="utf-8") as f:
                    theirs = [(peer_classes[int(v[0])], [float(x) for x in v[1:]])
                              for v in (line.split() for line in f if line.strip())]
                mine = [(our_classes[int(v[0])], [float(x) for x in v[1:]])
                        for v in (line.split() for line in z.read(f"labels/{stem if compat else task['id']}.txt").decode().splitlines())]
                for label, values in theirs:
                    match = next((m for m in mine if m[0] == label
                                  and all(abs(a - b) < 1e-5 for a, b in zip(m[1], values))), None)
                    if match is None:
                        fail(f"task {task['id']}: label-studio-sdk has {label} {values}; labelport has {mine}")
                    mine.remove(match)
                    boxes += 1
                if mine:
                    fail(f"task {task['id']}: labelport has {mine} beyond label-studio-sdk's boxes")
                images += 1
    if images == 0:
        fail("no image to compare")
    print(f"{images} images, {boxes} boxes agree with label-studio-sdk")


if __name__ == "__main__":
    main()
