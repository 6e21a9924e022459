#!/usr/bin/env python3
"""Print the metric names the Grafana dashboard's and the alert rules' PromQL expressions use.

    scripts/promql-names.py deploy/grafana/vouch.json deploy/prometheus/alerts.yml

A metric name is an identifier followed by `{`, `[`, `)`, whitespace or the end that is not a
PromQL function, keyword or aggregation modifier and not a label name inside `by (...)` /
`without (...)` / `on (...)` / `ignoring (...)` / `group_left (...)` / `group_right (...)`.
Label matchers (`{...}`), range selectors (`[...]`) and strings are dropped first, so label
names, `$__rate_interval` and label values never count. Histogram suffixes (`_bucket`, `_sum`,
`_count`) are kept: the caller matches them against the exposed samples.
"""
import json
import re
import sys

FUNCTIONS = {
    "abs", "absent", "absent_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min",
    "day_of_month", "day_of_week", "day_of_year", "days_in_month", "delta", "deriv", "exp",
    "floor", "histogram_count", "histogram_sum", "histogram_fraction", "histogram_quantile",
    "holt_winters", "hour", "idelta", "increase", "irate", "label_join", "label_replace", "ln",
    "log2", "log10", "minute", "month", "predict_linear", "rate", "resets", "round", "scalar",
    "sgn", "sort", "sort_desc", "sqrt", "time", "timestamp", "vector", "year",
    "avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time",
    "quantile_over_time", "stddev_over_time", "stdvar_over_time", "last_over_time",
    "present_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh", "cos", "cosh",
    "sin", "sinh", "tan", "tanh", "deg", "rad", "pi", "label_values", "query_result",
}
AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile",
}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"}
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def names(expr):
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"'(?:[^'\\]|\\.)*'", "''", expr)
    expr = re.sub(r"\{[^}]*\}", " {} ", expr)
    expr = re.sub(r"\[[^\]]*\]", " [] ", expr)
    # Label lists of grouping modifiers: `by (le, route)` and the like.
    expr = re.sub(r"\b(" + "|".join(GROUPING) + r")\s*\([^)]*\)", " ", expr)
    found = set()
    for m in IDENT.finditer(expr):
        word = m.group(0)
        start, end = m.span()
        if start > 0 and (expr[start - 1].isalnum() or expr[start - 1] in "_.$"):
            continue  # part of a number (1e3) or a variable
        rest = expr[end:].lstrip()
        if rest.startswith("("):
            continue  # a function or aggregation call
        low = word.lower()
        if low in FUNCTIONS or low in AGGREGATIONS or low in KEYWORDS or low in GROUPING:
            continue
        if re.fullmatch(r"\d+[smhdwy]", word):
            continue
        found.add(word)
    return found


def dashboard_exprs(path):
    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "expr" and isinstance(value, str):
                    yield value
                elif key == "templating":
                    for var in value.get("list", []):
                        q = var.get("query")
                        if isinstance(q, dict):
                            q = q.get("query")
                        if var.get("type") == "query" and isinstance(q, str):
                            inner = re.match(r"\s*label_values\((.*),\s*\w+\)\s*$", q)
                            yield inner.group(1) if inner else q
                else:
                    yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    with open(path) as f:
        yield from walk(json.load(f))


def rule_exprs(path):
    import yaml  # python3-yaml

    with open(path) as f:
        doc = yaml.safe_load(f)
    for group in doc.get("groups", []):
        for rule in group.get("rules", []):
            yield rule["expr"]


def main(paths):
    out = set()
    for path in paths:
        exprs = dashboard_exprs(path) if path.endswith(".json") else rule_exprs(path)
        count = 0
        for expr in exprs:
            count += 1
            out |= names(str(expr))
        if count == 0:
            sys.exit(f"promql-names: no expressions in {path}")
    for name in sorted(out):
        print(name)


if __name__ == "__main__":
    main(sys.argv[1:])
