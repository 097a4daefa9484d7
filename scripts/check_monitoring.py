#!/usr/bin/env python3
"""The chart's monitoring (scripts/check-deploy.sh runs this on the all-on render):
- the PrometheusRule: every alert has a severity (critical, warning, info), a summary, a
  description and a runbook_url whose anchor is a heading of docs/operations.md named after
  the alert; every recording rule an expression uses is defined;
- the dashboard (helm/guestloop/dashboards/guestloop.json): valid JSON, shipped unchanged in
  the ConfigMap with the Grafana sidecar label;
- every expression of both, through Prometheus' own PromQL grammar (@prometheus-io/lezer-
  promql from npm, in node: promtool is in no package registry). Grafana's interval
  variables are replaced by a duration first.
Whether the metric names exist is tests/tests/monitoring.rs' job (it runs the services).

Usage: check_monitoring.py <rendered manifests> <dashboard.json> <operations.md> <node_modules>
"""
import json
import os
import re
import subprocess
import sys

import yaml

manifest, dashboard_file, operations, node_modules = sys.argv[1:5]
bad = []
docs = [d for d in yaml.safe_load_all(open(manifest)) if d]

# Runbook anchors: GitHub's slugs of the headings of docs/operations.md.
anchors = set()
for line in open(operations, encoding="utf-8"):
    m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
    if m:
        slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
        anchors.add(slug)

exprs = []  # (where, PromQL)
rules = [d for d in docs if d["kind"] == "PrometheusRule"]
if len(rules) != 1:
    bad.append(f"{len(rules)} PrometheusRules rendered, expected 1")
records, alerts, used = set(), 0, {}
for r in rules:
    for g in r["spec"]["groups"]:
        for rule in g["rules"]:
            where = f"{g['name']}/{rule.get('alert') or rule.get('record')}"
            if "record" in rule:
                records.add(rule["record"])
            elif "alert" in rule:
                alerts += 1
                labels, ann = rule.get("labels", {}), rule.get("annotations", {})
                if labels.get("severity") not in ("critical", "warning", "info"):
                    bad.append(f"{where}: severity {labels.get('severity')!r}")
                for k in ("summary", "description", "runbook_url"):
                    if not str(ann.get(k, "")).strip():
                        bad.append(f"{where}: annotation {k} missing")
                url = str(ann.get("runbook_url", ""))
                anchor = url.partition("#")[2]
                if anchor not in anchors:
                    bad.append(f"{where}: runbook_url {url}: no heading with anchor #{anchor} in docs/operations.md")
                if anchor != rule["alert"].lower():
                    bad.append(f"{where}: runbook anchor #{anchor} is not the alert's name")
            else:
                bad.append(f"{where}: neither record nor alert")
            exprs.append((where, str(rule["expr"])))
            for name in re.findall(r"\b[a-zA-Z_][a-zA-Z0-9_]*:[a-zA-Z0-9_:]+", re.sub(r'"[^"]*"', '""', str(rule["expr"]))):
                used.setdefault(name, where)
for name, where in used.items():
    if name not in records:
        bad.append(f"{where}: uses {name}, which no recording rule defines")

# The dashboard: valid JSON, shipped unchanged, every query parses.
try:
    dash = json.load(open(dashboard_file, encoding="utf-8"))
except ValueError as e:
    bad.append(f"{dashboard_file}: not JSON: {e}")
    dash = {"panels": [], "templating": {"list": []}}
cms = [d for d in docs if d["kind"] == "ConfigMap" and "guestloop.json" in (d.get("data") or {})]
if len(cms) != 1:
    bad.append(f"{len(cms)} dashboard ConfigMaps rendered, expected 1")
for cm in cms:
    if json.loads(cm["data"]["guestloop.json"]) != dash:
        bad.append("the dashboard ConfigMap does not hold dashboards/guestloop.json")
    if cm["metadata"].get("labels", {}).get("grafana_dashboard") != "1":
        bad.append("the dashboard ConfigMap lacks the grafana_dashboard label")
def grafana_vars(q):
    # Grafana's interval variables stand where PromQL wants a duration.
    return re.sub(r"\$\{?__(rate_interval|interval|range)\}?", "5m", q)
targets = 0
def walk(panels):
    global targets
    for p in panels:
        walk(p.get("panels", []))
        for t in p.get("targets", []):
            targets += 1
            if not t.get("expr"):
                bad.append(f"panel {p.get('title')!r}: a target without expr")
            else:
                exprs.append((f"panel {p.get('title')!r}", grafana_vars(t["expr"])))
walk(dash.get("panels", []))
for v in dash.get("templating", {}).get("list", []):
    q = v.get("query")
    q = q.get("query") if isinstance(q, dict) else q
    m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", q or "")
    if v.get("type") == "query":
        if not m:
            bad.append(f"variable {v['name']}: not label_values(<selector>, <label>)")
        else:
            exprs.append((f"variable {v['name']}", m.group(1)))
if targets < 20:
    bad.append(f"only {targets} dashboard queries")

# Every expression through Prometheus' own PromQL grammar (lezer-promql).
node = r"""
const { parser } = require('@prometheus-io/lezer-promql');
const exprs = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const out = [];
for (const [where, q] of exprs) {
  const errs = [];
  parser.parse(q).iterate({ enter: n => { if (n.type.isError) errs.push(n.from); } });
  if (errs.length) out.push(`${where}: PromQL does not parse at ${errs[0]}: ${q.slice(Math.max(0, errs[0] - 40), errs[0])}<HERE>${q.slice(errs[0], errs[0] + 40)}`);
}
console.log(JSON.stringify(out));
"""
res = subprocess.run(["node", "-e", node], input=json.dumps(exprs), capture_output=True, text=True,
                     env={**os.environ, "NODE_PATH": node_modules})
if res.returncode != 0:
    bad.append(f"node: {res.stderr.strip()}")
else:
    bad.extend(json.loads(res.stdout))
print("\n".join(bad) or f"ok: {alerts} alerts, {len(records)} recording rules, {targets} dashboard queries, {len(exprs)} expressions parsed")
sys.exit(1 if bad else 0)
