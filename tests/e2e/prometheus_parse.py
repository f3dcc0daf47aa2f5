#!/usr/bin/python3
# Parses a Prometheus text exposition (the file named by argv[1]) with the Prometheus project's own Python
# client (Debian's python3-prometheus-client) and prints it as JSON for the test to check:
#   {"FAMILY": {"type": "counter", "help": "...", "samples": [{"name": ..., "labels": {...}, "value": N}]}}
# Exits 1 with the parser's message when the text is not valid exposition format.
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

try:
    with open(sys.argv[1], encoding="utf-8") as f:
        text = f.read()
    out = {}
    for family in text_string_to_metric_families(text):
        if family.name in out:
            raise ValueError("family %s appears twice" % family.name)
        out[family.name] = {
            "type": family.type,
            "help": family.documentation,
            "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in family.samples],
        }
    json.dump(out, sys.stdout)
except Exception as e:  # noqa: BLE001 - any failure is the test's to report
    print("not valid Prometheus text: %s" % e, file=sys.stderr)
    sys.exit(1)
