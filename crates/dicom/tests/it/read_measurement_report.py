"""Reads a hipfrac SR back with highdicom and prints what highdicom understood, as JSON.

Usage: python read_measurement_report.py SR.dcm

highdicom (not hipfrac) decides here whether the file is a TID 1500 Measurement Report: the
SR must load as one (`sr.content` is a `MeasurementReport` only when the root carries
template 1500), and every group is read through highdicom's own TID 1501/1410 accessors.
highdicom 0.28 has no accessor for TID 1500's report-level Qualitative Evaluations container
(the image-level verdict), so that one is found with highdicom's `find_content_items` and read
from highdicom's content items.
"""
import json
import sys

import highdicom as hd


QUALITATIVE_EVALUATIONS = hd.sr.CodedConcept("C0034375", "UMLS", "Qualitative Evaluations")
VT = hd.sr.ValueTypeValues


def code(concept):
    return None if concept is None else [concept.value, concept.scheme_designator, concept.meaning]


def child(item):
    """A content item below an evaluation: its relationship, name and value."""
    out = {"relationship": item.relationship_type.value, "value_type": item.value_type.value, "name": code(item.name)}
    if item.value_type == VT.NUM:
        out["value"], out["unit"] = item.value, code(item.unit)
    elif item.value_type == VT.IMAGE:
        out["source_image"] = str(item.referenced_sop_instance_uid)
    return out


sr = hd.sr.srread(sys.argv[1])
report = sr.content
if not isinstance(report, hd.sr.MeasurementReport):
    sys.exit(f"not a MeasurementReport: {type(report).__name__}")
root = report[0]
out = {
    "sop_class": type(sr).__name__,
    "title": code(root.name),
    "template": [root.ContentTemplateSequence[0].MappingResource, root.ContentTemplateSequence[0].TemplateIdentifier],
    "procedure_reported": [
        code(item.value) for item in root.ContentSequence if item.name == hd.sr.CodedConcept("121058", "DCM", "Procedure reported")
    ],
    "observers": [],
    "image_groups": [],
    "boxes": [],
    "qualitative_evaluations": [],
}
for observer in report.get_observer_contexts():
    attributes = observer.observer_identifying_attributes
    out["observers"].append(
        {
            "type": code(observer.observer_type),
            "uid": str(attributes.uid),
            "name": attributes.name,
            "manufacturer": attributes.manufacturer_name,
            "model_name": attributes.model_name,
        }
    )
for group in report.get_image_measurement_groups():
    out["image_groups"].append(
        {
            "tracking_identifier": group.tracking_identifier,
            "tracking_uid": str(group.tracking_uid),
            "evaluations": [[code(e.name), code(e.value)] for e in group.get_qualitative_evaluations()],
            "measurements": [[code(m.name), m.value, code(m.unit)] for m in group.get_measurements()],
            "texts": [
                [code(item.name), item.value]
                for item in group[0].ContentSequence
                if item.value_type == hd.sr.ValueTypeValues.TEXT and item.relationship_type == hd.sr.RelationshipTypeValues.CONTAINS
            ],
            "source_images": [str(image.referenced_sop_instance_uid) for image in group.source_images],
        }
    )
for group in report.get_planar_roi_measurement_groups():
    roi = group.roi
    sites = []
    for site in group.finding_sites:
        sites.append({"site": code(site.value), "laterality": code(site.laterality)})
    out["boxes"].append(
        {
            "tracking_identifier": group.tracking_identifier,
            "tracking_uid": str(group.tracking_uid),
            "finding": code(group.finding_type),
            "finding_sites": sites,
            "graphic_type": roi.graphic_type.value,
            "points": roi.value.tolist(),
            "source_image": str(roi.ContentSequence[0].referenced_sop_instance_uid),
            "reference_type": code(group.reference_type),
            "evaluations": [[code(e.name), code(e.value)] for e in group.get_qualitative_evaluations()],
            "measurements": [[code(m.name), m.value, code(m.unit)] for m in group.get_measurements()],
        }
    )
# TID 1500's report-level evaluations: each container's CODE items (with what is below them)
# and TEXT items, in order.
for container in hd.sr.utils.find_content_items(root, name=QUALITATIVE_EVALUATIONS, value_type=VT.CONTAINER):
    evaluations = {"relationship": container.relationship_type.value, "codes": [], "texts": []}
    for item in container.ContentSequence:
        if item.value_type == VT.CODE:
            evaluations["codes"].append(
                {
                    "relationship": item.relationship_type.value,
                    "name": code(item.name),
                    "value": code(item.value),
                    "children": [child(c) for c in getattr(item, "ContentSequence", [])],
                }
            )
        elif item.value_type == VT.TEXT:
            evaluations["texts"].append([item.relationship_type.value, code(item.name), item.value])
        else:
            sys.exit(f"unexpected {item.value_type.value} in the Qualitative Evaluations container")
    out["qualitative_evaluations"].append(evaluations)
print(json.dumps(out))
