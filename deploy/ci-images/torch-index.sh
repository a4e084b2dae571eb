#!/usr/bin/env bash
# A PEP 503 "simple" index in DIR holding torch==2.13.0 as this host's pip resolves it (the CPU wheel that
# lies on disk, pip's find-links) and torch's dependencies, for the worker image's TORCH_INDEX in CI.
# Built once; a marker file names the pin, so a changed pin rebuilds it. Serve DIR over http.
# Usage: deploy/ci-images/torch-index.sh DIR
set -euo pipefail
dir=$1
pin=torch==2.13.0
marker="$dir/.built-$pin"
[ -f "$marker" ] && { echo "torch-index: cached ($dir)"; exit 0; }
rm -rf "$dir"
mkdir -p "$dir/files"
python3 -m pip download --quiet --dest "$dir/files" "$pin"
python3 - "$dir" <<'PY'
import html, pathlib, re, sys
root = pathlib.Path(sys.argv[1])
projects: dict[str, list[str]] = {}
for f in sorted((root / "files").iterdir()):
    name = re.sub(r"[-_.]+", "-", f.name.split("-")[0]).lower()
    projects.setdefault(name, []).append(f.name)
for name, files in projects.items():
    d = root / "simple" / name
    d.mkdir(parents=True, exist_ok=True)
    links = "".join(f'<a href="../../files/{html.escape(n)}">{html.escape(n)}</a><br>\n' for n in files)
    (d / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{links}</body></html>\n")
idx = "".join(f'<a href="{n}/">{n}</a><br>\n' for n in sorted(projects))
(root / "simple" / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{idx}</body></html>\n")
print("torch-index:", ", ".join(sorted(projects)))
PY
touch "$marker"
