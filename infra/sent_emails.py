#!/usr/bin/env python3
"""Prints, as a JSON list, the e-mails moto's SES has accepted: [{source, destinations, subject, body}]."""
import json
import sys
import urllib.request

endpoint = sys.argv[1].rstrip("/")
with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=10) as response:
    data = json.load(response)
messages = data.get("ses", {}).get("Message", [])
print(json.dumps(messages))
