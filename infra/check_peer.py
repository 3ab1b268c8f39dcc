#!/usr/bin/env python3
"""Holds labelport's reading of a Label Studio export to Label Studio's own: runs
label-studio-sdk's converter on the same export and compares what the two write.

    check_peer.py yolo      LABELPORT_YOLO_ZIP  EXPORT_JSON CONFIG_XML [--compat]
    check_peer.py coco      LABELPORT_COCO_JSON EXPORT_JSON CONFIG_XML
    check_peer.py voc       LABELPORT_VOC_ZIP   EXPORT_JSON CONFIG_XML
    check_peer.py conll2003 LABELPORT_CONLL     EXPORT_JSON CONFIG_XML
    check_peer.py csv       LABELPORT_CSV       EXPORT_JSON CONFIG_XML
    check_peer.py json      LABELPORT_JSON      EXPORT_JSON CONFIG_XML

(csv and json also take labelport's file as a download URL.)

coco, voc, conll2003, csv and json take labelport's output written with "compat":
"label-studio",
the converter's layout; yolo takes either (--compat: its label files must be named by
the image's file name, as the converter's are, and its classes numbered by name, as the
converter numbers them).

The converter is given the export's rectangles and text spans only (its YOLO writes
polygons as segment lines into detection files and keypoint configs as pose files, its
COCO writes keypoints, which labelport refuses), and the config without its per-region
Choices (the converter counts their values as classes; labelport holds them as
attributes). Compared are the tasks where the two agree by design: the task has one
annotation (of several, the converter writes each, into COCO and CoNLL, or keeps the
first, as later files overwrite it in YOLO and VOC; labelport writes the last: the
task's current state). For an image, the annotation holds only unrotated rectangles
(labelport clips and turns rotated boxes; the converter does not), and the image's
file name is unique in the export (the converter names files by it, so two such images
overwrite each other's). For those:

- yolo: each image's boxes, class by name (the converter orders classes by name,
  labelport by the config unless compat), within 1e-5 of the image.
- coco: the categories (id and name); every image the converter gives a size is in
  labelport's file with that size (matched by file_name, the image's URL: the
  converter numbers one image per annotation, labelport one per task), whose images
  and annotations are numbered from 0; each image's annotations, category by name,
  bbox and area within half a thousandth (labelport writes pixels to the thousandth;
  the converter every digit of its float).
- voc: every file the converter writes is in labelport's ZIP; <folder>, <filename>,
  <size> (by value: the converter writes the export's original_width as it is given,
  `1280.0`) and each object's name and integer corners, exactly.
- conll2003: labelport's file has one `-DOCSTART- -X- O` atop, every token line
  `token -X- _ TAG` with IOB2 tags of the config's labels, and one document per task,
  each ended by a blank line (the converter: one per annotation, one for a task without
  any). For each task compared, labelport's entities are the annotation's spans (label
  and text, whitespace removed), the converter's have the same labels in the same
  order, and each spells labelport's or, where the converter's tokenizer does not cut
  at the span's edge (`Kraków.` for the span `Kraków`), contains it.

csv and json (the converter's JSON_MIN) are compared on the whole export and config,
every task and annotation: the same records (task, annotation) in the same order
(newest annotation first); every column or key of the converter's with the same
value, text exactly, numbers within 1e-6 of their size, each control's results as the
converter simplifies them (a lone choice as its text), but the two keys of a value
labelport does not hold (a polygon's `closed`, a keypoint's drawn `width`). labelport's
CSV has a column for every control of the config (the converter: those the export
uses), sorted by name as the converter sorts; the extra ones must be empty. The CSV
keeps annotated and validated tasks, so the converter's row of a task without
annotations is not compared (the JSON has that record).

Prints what agrees ("N images, M boxes agree with label-studio-sdk's COCO") or names
the first difference and exits 1.
"""
import csv
import io
import json
import os
import re
import sys
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from collections import Counter
from itertools import accumulate

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_export import fail, fetch  # noqa: E402

# Result types the two read alike (the docstring says why the others are not given).
PEER_TYPES = ("rectanglelabels", "labels")
# The converter's layouts of one record per annotation, read from the whole export.
RECORD_LAYOUTS = ("CSV", "JSON_MIN")
# Keys of a result's value that labelport's model does not hold: a polygon's `closed`,
# a keypoint's drawn `width`.
UNHELD = {"polygonlabels": "closed", "keypointlabels": "width"}
DOCSTART = "-DOCSTART- -X- O"


def file_name(task):
    return task["data"]["image"].split("?")[0].rsplit("/", 1)[-1]


def stem(name):
    return name.rsplit(".", 1)[0]


def convert(tasks, config, fmt, work):
    """Runs label-studio-sdk's converter on what both read alike (everything, for the
    record layouts); returns its output folder."""
    whole = fmt in RECORD_LAYOUTS
    peer_tasks = tasks if whole else [
        dict(task, annotations=[
            dict(a, result=[r for r in a["result"] if r.get("type") in PEER_TYPES])
            for a in task["annotations"]])
        for task in tasks
    ]
    export = os.path.join(work, "export.json")
    with open(export, "w", encoding="utf-8") as f:
        json.dump(peer_tasks, f)
    xml = open(config, encoding="utf-8").read()
    if not whole:
        xml = re.sub(r"\s*<KeyPointLabels.*?</KeyPointLabels>", "", xml, flags=re.S)
        xml = re.sub(r"\s*<PolygonLabels.*?</PolygonLabels>", "", xml, flags=re.S)
        xml = re.sub(r"\s*<Choices[^>]*perRegion[^>]*>.*?</Choices>", "", xml, flags=re.S)
    from label_studio_sdk.converter import Converter
    out = os.path.join(work, fmt.lower())
    Converter(config=xml, project_dir=None, download_resources=False).convert(
        export, out, fmt, is_dir=False)
    return out


def kept(task):
    """The annotations the converter reads: not cancelled (nor `skipped`, the older
    name)."""
    return [a for a in task["annotations"] if not (a.get("was_cancelled") or a.get("skipped"))]


def agreeing(tasks, images):
    """The tasks the two write alike by design, each with its annotation's result."""
    names = Counter(file_name(t) for t in tasks) if images else Counter()
    for task in tasks:
        annotations = kept(task)
        if len(annotations) != 1:
            continue
        result = annotations[0]["result"]
        if images:
            regions = [r for r in result if r.get("type") not in ("choices", "relation")]
            if (names[file_name(task)] > 1 or not regions
                    or any(r["type"] != "rectanglelabels" or r["value"].get("rotation") for r in regions)):
                continue
        yield task, result


def boxes_agree(images, boxes, fmt):
    if images == 0:
        fail("no image to compare")
    return f"{images} images, {boxes} boxes agree with label-studio-sdk's {fmt}"


def same_shapes(task, theirs, mine, close):
    """Pairs each of the converter's (label, values) with one of labelport's; returns
    how many."""
    mine = list(mine)
    for label, values in theirs:
        match = next((m for m in mine if m[0] == label and close(m[1], values)), None)
        if match is None:
            fail(f"task {task['id']}: label-studio-sdk has {label} {values}; labelport has {mine}")
        mine.remove(match)
    if mine:
        fail(f"task {task['id']}: labelport has {mine} beyond label-studio-sdk's")
    return len(theirs)


def check_yolo(ours, tasks, peer, compat):
    peer_classes = open(os.path.join(peer, "classes.txt"), encoding="utf-8").read().splitlines()
    images = boxes = 0
    with zipfile.ZipFile(ours) as z:
        our_classes = z.read("classes.txt").decode("utf-8").splitlines()
        if compat:
            if our_classes != sorted(our_classes):
                fail(f"compat classes are not numbered by name: {our_classes}")
            notes = json.loads(z.read("notes.json"))
            if notes["categories"] != [{"id": i, "name": n} for i, n in enumerate(our_classes)]:
                fail(f"notes.json does not list classes.txt: {notes['categories']}")

        def read(lines, classes):
            return [(classes[int(v[0])], [float(x) for x in v[1:]])
                    for v in (line.split() for line in lines if line.strip())]

        for task, _ in agreeing(tasks, images=True):
            name = stem(file_name(task))
            with open(os.path.join(peer, "labels", name + ".txt"), encoding="utf-8") as f:
                theirs = read(f, peer_classes)
            if compat:
                label_file = f"labels/{name}.txt"
            else:
                split = [n for n in z.namelist() if n in (f"labels/train/{task['id']}.txt", f"labels/val/{task['id']}.txt")]
                label_file = split[0] if split else f"labels/train/{task['id']}.txt"
            mine = read(z.read(label_file).decode().splitlines(), our_classes)
            boxes += same_shapes(task, theirs, mine,
                                 lambda a, b: all(abs(x - y) < 1e-5 for x, y in zip(a, b)))
            images += 1
    return boxes_agree(images, boxes, "YOLO")


def check_coco(ours, tasks, peer):
    theirs = json.load(open(os.path.join(peer, "result.json"), encoding="utf-8"))
    mine = json.load(open(ours, encoding="utf-8"))
    def categories(coco):
        return sorted((c["id"], c["name"]) for c in coco["categories"])

    if categories(mine) != categories(theirs):
        fail(f"categories: label-studio-sdk has {categories(theirs)}, labelport {categories(mine)}")
    for part in ("images", "annotations"):
        if [x["id"] for x in mine[part]] != list(range(len(mine[part]))):
            fail(f"labelport's {part} are not numbered from 0 in order")
    sizes = {}
    for image in mine["images"]:
        if image["file_name"] in sizes:
            fail(f"labelport has two images {image['file_name']}")
        sizes[image["file_name"]] = (image["width"], image["height"])
    for image in theirs["images"]:
        if image["width"] is not None and sizes.get(image["file_name"]) != (image["width"], image["height"]):
            fail(f"image {image['file_name']}: label-studio-sdk has {image['width']}x{image['height']}, "
                 f"labelport {sizes.get(image['file_name'])}")

    def by_url(coco):
        names = {c["id"]: c["name"] for c in coco["categories"]}
        urls = {i["id"]: i["file_name"] for i in coco["images"]}
        boxes = {}
        for a in coco["annotations"]:
            boxes.setdefault(urls[a["image_id"]], []).append((names[a["category_id"]], a["bbox"] + [a["area"]]))
        return boxes

    def close(a, b):
        # labelport writes pixels to the thousandth, the converter every digit.
        return all(abs(x - y) <= 0.0005 + 1e-6 for x, y in zip(a, b))

    their_boxes, my_boxes = by_url(theirs), by_url(mine)
    images = boxes = 0
    for task, _ in agreeing(tasks, images=True):
        url = task["data"]["image"]
        if url not in sizes:
            fail(f"task {task['id']}: labelport has no image {url}")
        boxes += same_shapes(task, their_boxes.get(url, []), my_boxes.get(url, []), close)
        images += 1
    return boxes_agree(images, boxes, "COCO")


def check_voc(ours, tasks, peer):
    folder = os.path.join(peer, "Annotations")
    images = boxes = 0
    with zipfile.ZipFile(ours) as z:
        written = set(z.namelist())
        for name in os.listdir(folder):
            if f"Annotations/{name}" not in written:
                fail(f"label-studio-sdk writes Annotations/{name}; labelport does not")

        def read(root):
            head = (root.findtext("folder"), root.findtext("filename"),
                    [float(root.findtext(f"size/{k}")) for k in ("width", "height", "depth")])
            objects = [(o.findtext("name"), [int(o.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")])
                       for o in root.iter("object")]
            return head, objects

        for task, _ in agreeing(tasks, images=True):
            name = stem(file_name(task)) + ".xml"
            their_head, theirs = read(ET.parse(os.path.join(folder, name)).getroot())
            my_head, mine = read(ET.fromstring(z.read(f"Annotations/{name}")))
            if my_head != their_head:
                fail(f"task {task['id']}: label-studio-sdk's {name} has {their_head}, labelport's {my_head}")
            boxes += same_shapes(task, theirs, mine, lambda a, b: a == b)
            images += 1
    return boxes_agree(images, boxes, "VOC")


def documents(path, labels):
    """The documents of a CoNLL file in the converter's layout, each a list of
    (token, tag). With `labels` (labelport's file), each line must have exactly four
    columns and tags must be IOB2 of these labels."""
    lines = open(path, encoding="utf-8").read().split("\n")
    if lines[0] != DOCSTART or lines[-1] != "":
        fail(f"{path} does not start with {DOCSTART!r} and end with a line break")
    found, document, previous = [], [], "O"
    for line in lines[1:-1]:
        if not line:
            found.append(document)
            document, previous = [], "O"
            continue
        # The converter's tokens are its tokenizer's and may hold odd characters: only
        # labelport's are held to four space-separated columns.
        columns = line.split(" ") if labels is not None else line.rsplit(" ", 3)
        if len(columns) != 4 or columns[1:3] != ["-X-", "_"] or columns[0] in ("", "-DOCSTART-"):
            fail(f"{path}: not a token line `token -X- _ TAG`: {line!r}")
        tag = columns[3]
        if labels is not None and tag != "O":
            prefix, _, label = tag.partition("-")
            if label not in labels or prefix not in ("B", "I") or prefix == "I" and previous[2:] != label:
                fail(f"{path}: not an IOB2 tag of the config's labels after {previous}: {line!r}")
        document.append((columns[0], tag))
        previous = tag
    if document:
        fail(f"{path}: the last document is not ended by a blank line")
    return found


def entities(document):
    """(label, text) of each entity, the text without whitespace."""
    found, previous = [], "O"
    for token, tag in document:
        if tag != "O":
            if tag.startswith("I-") and previous[2:] == tag[2:]:
                found[-1][1] += token
            else:
                found.append([tag[2:], token])
        previous = tag
    return [tuple(e) for e in found]


def check_conll(ours, tasks, peer, config):
    labels = {label.get("value") for label in ET.parse(config).getroot().iter("Label")}
    mine = documents(ours, labels)
    theirs = documents(os.path.join(peer, "result.conll"), None)
    if len(mine) != len(tasks):
        fail(f"labelport writes {len(mine)} documents for {len(tasks)} tasks")
    # The converter writes a document per annotation not cancelled (none for a task
    # whose annotations all are), one for a task without any.
    per_task = [len(kept(t)) if t["annotations"] else 1 for t in tasks]
    if len(theirs) != sum(per_task):
        fail(f"label-studio-sdk writes {len(theirs)} documents, not one per annotation ({sum(per_task)})")
    first = {t["id"]: (i, j) for i, (t, j) in enumerate(zip(tasks, accumulate(per_task, initial=0)))}
    compared = found = spelled = 0
    for task, result in agreeing(tasks, images=False):
        i, j = first[task["id"]]
        units = task["data"]["text"].encode("utf-16-le")
        # Label Studio counts offsets in UTF-16 units.
        spans = sorted((r["value"]["start"], r["value"]["end"], r["value"]["labels"][0])
                       for r in result if r.get("type") == "labels")
        want = [(label, "".join(units[2 * s:2 * e].decode("utf-16-le").split())) for s, e, label in spans]
        my_entities, their_entities = entities(mine[i]), entities(theirs[j])
        if my_entities != want:
            fail(f"task {task['id']}: labelport's entities {my_entities} are not the spans {want}")
        if [e[0] for e in their_entities] != [e[0] for e in my_entities]:
            fail(f"task {task['id']}: label-studio-sdk's entities are {their_entities}, labelport's {my_entities}")
        for (_, my_text), (_, their_text) in zip(my_entities, their_entities):
            if my_text not in their_text:
                fail(f"task {task['id']}: label-studio-sdk's entity {their_text!r} is not labelport's {my_text!r}")
            spelled += my_text == their_text
        compared += 1
        found += len(my_entities)
    if compared == 0:
        fail("no document to compare")
    return (f"{compared} documents, {found} entities agree with label-studio-sdk's CONLL2003 "
            f"({spelled} spelled alike, the rest within the converter's wider tokens)")


def same_value(ours, theirs, path):
    """Why labelport's value is not the converter's, or None: numbers within 1e-6 of
    their size, objects on the converter's keys (but those labelport does not hold),
    lists item by item, anything else exactly."""
    number = (int, float)
    if isinstance(theirs, number) and isinstance(ours, number) and not isinstance(theirs, bool):
        return None if abs(ours - theirs) <= 1e-6 * max(1.0, abs(theirs)) else f"{path}: {ours} != {theirs}"
    if isinstance(theirs, dict) and isinstance(ours, dict):
        unheld = {key for labels, key in UNHELD.items() if labels in theirs}
        keys = set(theirs) - unheld
        if set(ours) != keys:
            return f"{path}: keys {sorted(ours)}, the converter's {sorted(keys)}"
        return next((why for key in sorted(keys)
                     if (why := same_value(ours[key], theirs[key], f"{path}.{key}"))), None)
    if isinstance(theirs, list) and isinstance(ours, list):
        if len(ours) != len(theirs):
            return f"{path}: {len(ours)} items, the converter's {len(theirs)}"
        return next((why for i, (o, t) in enumerate(zip(ours, theirs))
                     if (why := same_value(o, t, f"{path}[{i}]"))), None)
    return None if ours == theirs else f"{path}: {ours!r} != {theirs!r}"


def same_records(ours, theirs, layout):
    """Holds labelport's records to the converter's, one by one; returns how many."""
    key = lambda r: (str(r["id"]), str(r["annotation_id"]))
    if [key(r) for r in ours] != [key(r) for r in theirs]:
        first = next((i for i, (o, t) in enumerate(zip(ours, theirs)) if key(o) != key(t)), min(len(ours), len(theirs)))
        fail(f"{layout}: {len(ours)} records, the converter's {len(theirs)}; record {first} differs "
             f"(task, annotation): {key(ours[first]) if first < len(ours) else None} vs "
             f"{key(theirs[first]) if first < len(theirs) else None}")
    for o, t in zip(ours, theirs):
        why = same_value(o, t, f"task {t['id']} annotation {t['annotation_id']}")
        if why:
            fail(f"{layout}: {why}")
    if not theirs:
        fail(f"{layout}: no record to compare")
    return len(theirs)


def csv_cell(text):
    """A cell as the value it holds: a control's JSON parsed, a number as a number."""
    if text[:1] in ("[", "{"):
        return json.loads(text)
    try:
        return float(text)
    except ValueError:
        return text


def check_csv(ours, peer):
    with open(os.path.join(peer, "result.csv"), encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames
        # labelport's CSV keeps annotated and validated tasks: not the converter's row
        # of a task nobody annotated (its JSON has it).
        theirs = [row for row in reader if row["annotation_id"]]
    reader = csv.DictReader(io.StringIO(fetch(ours).decode("utf-8"), newline=""))
    our_columns, mine = reader.fieldnames, list(reader)
    if our_columns != sorted(our_columns):
        fail(f"CSV: columns not sorted by name: {our_columns}")
    if set(columns) - set(our_columns):
        fail(f"CSV: no column {sorted(set(columns) - set(our_columns))}")
    extra = [c for c in our_columns if c not in columns]
    if filled := next((r["id"] for r in mine if any(r[c] for c in extra)), None):
        fail(f"CSV: task {filled} fills one of {extra}, which the converter has no column for")
    cells = lambda rows: [{c: csv_cell(r[c]) for c in columns} for r in rows]
    n = same_records(cells(mine), cells(theirs), "CSV")
    return f"{n} rows of {len(columns)} columns agree with label-studio-sdk's CSV ({len(extra)} unused controls more)"


def check_json_min(ours, peer):
    theirs = json.load(open(os.path.join(peer, "result.json"), encoding="utf-8"))
    n = same_records(json.loads(fetch(ours)), theirs, "JSON_MIN")
    return f"{n} records agree with label-studio-sdk's JSON_MIN"


def main():
    fmt, ours, export, config = sys.argv[1:5]
    compat = "--compat" in sys.argv[5:]
    peer_format = {"yolo": "YOLO", "coco": "COCO", "voc": "VOC", "conll2003": "CONLL2003",
                   "csv": "CSV", "json": "JSON_MIN"}.get(fmt)
    if peer_format is None:
        fail(f"unknown format {fmt}")
    tasks = json.load(open(export, encoding="utf-8"))
    with tempfile.TemporaryDirectory() as work:
        peer = convert(tasks, config, peer_format, work)
        if fmt == "yolo":
            agree = check_yolo(ours, tasks, peer, compat)
        elif fmt == "coco":
            agree = check_coco(ours, tasks, peer)
        elif fmt == "voc":
            agree = check_voc(ours, tasks, peer)
        elif fmt == "csv":
            agree = check_csv(ours, peer)
        elif fmt == "json":
            agree = check_json_min(ours, peer)
        else:
            agree = check_conll(ours, tasks, peer, config)
    print(agree)


if __name__ == "__main__":
    main()
