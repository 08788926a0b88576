#!/usr/bin/env python3
"""Compare notebooks executed by `kvnb notebooks run` with the same notebooks executed by the official
.NET Interactive kernel under Jupyter (scripts/jupyter-check.sh). Standard library only.

  python3 scripts/compare-notebooks.py OURS.ipynb JUPYTER.ipynb [OURS2.ipynb JUPYTER2.ipynb ...]

For every code cell it checks:
  1. both runs executed it (execution_count set) and neither produced an `error` output;
  2. the same outputs in the same order: output type, stream name, and the set of MIME types;
  3. the same content: stream text, every text MIME type (text/plain, text/html, text/csv, ...) as text,
     and every JSON MIME type (the plotly figures) as parsed JSON, so numbers must be identical.
Normalised first, as a notebook front end shows them: consecutive text of one stream is joined, CRLF
becomes LF, a JSON MIME value stored as a string (the Jupyter kernel's way) is parsed, `image/png` is left
out (only `kvnb notebooks run` renders PNGs), and so is the tool's front-end bootstrap (a text/html output
that loads the kernel's JavaScript API; only the Jupyter kernel sends it).
A cell whose metadata sets {"kvnb": {"nondeterministic": true}} (timings, clocks) is held to 1 and 2 only.
Exit code 0 when every pair agrees, 1 otherwise (each difference is printed), 2 on bad arguments.
"""
import json
import sys

BOOTSTRAP_MARK = "dotnet-interactive-this-cell"


def text(value):
    if isinstance(value, list):
        value = "".join(value)
    return value.replace("\r\n", "\n") if isinstance(value, str) else value


def is_json_mime(mime):
    return mime == "application/json" or mime.endswith("+json")


def normalise(outputs):
    result = []
    for o in outputs:
        kind = o.get("output_type")
        if kind == "stream":
            t = text(o.get("text", ""))
            if result and result[-1]["kind"] == "stream" and result[-1]["name"] == o.get("name"):
                result[-1]["data"]["text"] += t
            else:
                result.append({"kind": kind, "name": o.get("name"), "data": {"text": t}})
        elif kind in ("display_data", "execute_result"):
            data = {}
            for mime, value in o.get("data", {}).items():
                if mime == "image/png":
                    continue
                if is_json_mime(mime):
                    data[mime] = json.loads(value) if isinstance(value, str) else value
                else:
                    data[mime] = text(value)
            if set(data) == {"text/html"} and BOOTSTRAP_MARK in data["text/html"]:
                continue
            result.append({"kind": kind, "name": None, "data": data})
        elif kind == "error":
            result.append({"kind": kind, "name": None, "data": {"error": f"{o.get('ename')}: {o.get('evalue')}"}})
    return result


def first_difference(a, b, path=""):
    """Where two values first differ: a JSON path for objects and lists, a character position for text."""
    if isinstance(a, dict) and isinstance(b, dict):
        if sorted(a) != sorted(b):
            return f"at {path or '/'}: keys {sorted(a)} vs {sorted(b)}"
        return next(first_difference(a[k], b[k], f"{path}/{k}") for k in sorted(a) if a[k] != b[k])
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"at {path or '/'}: {len(a)} items vs {len(b)}"
        return next(first_difference(x, y, f"{path}/{i}") for i, (x, y) in enumerate(zip(a, b)) if x != y)
    if isinstance(a, str) and isinstance(b, str) and not path:
        i = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), min(len(a), len(b)))
        return f"at character {i}: {a[max(0, i - 30):i + 50]!r} vs {b[max(0, i - 30):i + 50]!r}"
    return f"at {path or '/'}: {json.dumps(a)[:120]} vs {json.dumps(b)[:120]}"


def compare(ours_path, theirs_path):
    ours, theirs = (json.load(open(p, encoding="utf-8")) for p in (ours_path, theirs_path))
    code = lambda nb: [c for c in nb["cells"] if c.get("cell_type") == "code"]
    a_cells, b_cells = code(ours), code(theirs)
    problems, compared = [], 0
    if len(a_cells) != len(b_cells):
        return [f"{len(a_cells)} code cells vs {len(b_cells)}"], 0
    for n, (a, b) in enumerate(zip(a_cells, b_cells), start=1):
        where = f"code cell {n}"
        if text(a.get("source", "")) != text(b.get("source", "")):
            problems.append(f"{where}: sources differ (not the same notebook?)")
            continue
        for label, cell in (("kvnb", a), ("jupyter", b)):
            if cell.get("execution_count") is None:
                problems.append(f"{where}: not executed by {label}")
        a_out, b_out = normalise(a.get("outputs", [])), normalise(b.get("outputs", []))
        for label, outs in (("kvnb", a_out), ("jupyter", b_out)):
            for o in outs:
                if o["kind"] == "error":
                    problems.append(f"{where}: error under {label}: {o['data']['error']}")
        shape = lambda outs: [(o["kind"], o["name"], sorted(o["data"])) for o in outs]
        if shape(a_out) != shape(b_out):
            problems.append(f"{where}: outputs differ in kind or MIME types: {shape(a_out)} vs {shape(b_out)}")
            continue
        if a.get("metadata", {}).get("kvnb", {}).get("nondeterministic"):
            continue
        for k, (x, y) in enumerate(zip(a_out, b_out), start=1):
            for mime in x["data"]:
                compared += 1
                if x["data"][mime] != y["data"][mime]:
                    problems.append(f"{where}, output {k}, {mime}: {first_difference(x['data'][mime], y['data'][mime])}")
    return problems, compared


def main(args):
    if len(args) == 0 or len(args) % 2:
        print("usage:" + next(l for l in __doc__.splitlines() if "compare-notebooks.py" in l), file=sys.stderr)
        return 2
    failed = False
    for ours, theirs in zip(args[0::2], args[1::2]):
        problems, compared = compare(ours, theirs)
        if problems:
            failed = True
            print(f"{ours}: {len(problems)} difference(s) from the official kernel ({theirs}):")
            for p in problems:
                print(f"  {p}")
        else:
            print(f"{ours}: same as under the official kernel ({compared} output values compared)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
