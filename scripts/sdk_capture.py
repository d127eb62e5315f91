#!/usr/bin/env python3
"""Records what each tracking SDK really sends: tests/vectors/segment/captured_<sdk>.json.

    scripts/install_sdks.sh /tmp/sdk            # once
    python3 scripts/sdk_capture.py /tmp/sdk     # from the repository root

For each SDK it starts tests/sdk/capture_server.py on 127.0.0.1 (a free port; answers 200
{"success":true}), runs tests/sdk/send_python.py or send_node.mjs against it with write key
WRITE_KEY and run id RUN_ID, and stores every request of that run: method, path, headers (as sent,
Host's port replaced by PORT), the raw body in base64 when it was gzipped, and the decoded JSON
body. Timestamps, sentAt and the like are of course those of the capture run.
Standard library only.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

WRITE_KEY = "surety_test_write_key"
RUN_ID = "capture"

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SDK = os.path.join(ROOT, "tests", "sdk")
OUT = os.path.join(ROOT, "tests", "vectors", "segment")

RUNS = [
    # (file stem, language, sdk arg, extra env, description)
    ("segment_python", "py", "segment", {}, "segment-analytics-python, default options"),
    ("segment_python_gzip", "py", "segment", {"SURETY_SDK_GZIP": "1"}, "segment-analytics-python with gzip=True"),
    ("rudder_python", "py", "rudder", {}, "rudder-sdk-python, default options (gzip on by default)"),
    ("segment_node", "js", "segment", {}, "@segment/analytics-node, default options"),
    ("rudder_node", "js", "rudder", {}, "@rudderstack/rudder-sdk-node, default options (gzip on by default)"),
]


def run(sdk_dir, stem, lang, sdk, env_extra, desc):
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "requests.jsonl")
        port_file = os.path.join(tmp, "port")
        srv = subprocess.Popen(
            [sys.executable, os.path.join(SDK, "capture_server.py"), log, "--port-file", port_file],
            stdout=subprocess.DEVNULL,
        )
        try:
            for _ in range(100):
                if os.path.exists(port_file) and open(port_file).read():
                    break
                time.sleep(0.05)
            port = open(port_file).read().strip()
            base = f"http://127.0.0.1:{port}"
            env = dict(os.environ, SURETY_SDK_DIR=sdk_dir, **env_extra)
            if lang == "py":
                cmd = [os.path.join(sdk_dir, "venv", "bin", "python"), os.path.join(SDK, "send_python.py")]
            else:
                cmd = ["node", os.path.join(SDK, "send_node.mjs")]
            cmd += [sdk, base, WRITE_KEY, RUN_ID]
            p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
            if p.returncode != 0:
                sys.exit(f"{stem}: exit {p.returncode}\n{p.stdout}\n{p.stderr}")
            result = json.loads(p.stdout)
            time.sleep(0.2)
        finally:
            srv.terminate()
            srv.wait()
        requests = []
        for line in open(log, encoding="utf-8"):
            r = json.loads(line)
            headers = {k: (v.replace(port, "PORT") if k.lower() == "host" else v) for k, v in r["headers"]}
            lower = {k.lower(): v for k, v in headers.items()}
            req = {
                "method": r["method"],
                "path": r["path"] + (("?" + r["query"]) if r["query"] else ""),
                "headers": headers,
                "content_type": lower.get("content-type"),
                "content_encoding": lower.get("content-encoding"),
                "authorization": lower.get("authorization"),
                "body_gzipped": r["body_gzip_magic"],
            }
            if r["body_gzip_magic"]:
                req["body_base64"] = r["body_base64"]
            req["body"] = r["body"]
            requests.append(req)
    doc = {
        "sdk": result["sdk"],
        "sdk_version": result["sdk_version"],
        "description": desc,
        "generated_by": "scripts/sdk_capture.py",
        "command": ("python send_python.py" if lang == "py" else "node send_node.mjs")
        + f" {sdk} http://127.0.0.1:PORT {WRITE_KEY} {RUN_ID}",
        "env": env_extra,
        "script_output": result,
        "requests": requests,
    }
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, f"captured_{stem}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"{os.path.relpath(path, ROOT)}: {len(requests)} request(s)")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: sdk_capture.py SDK_DIR  (as installed by scripts/install_sdks.sh SDK_DIR)")
    sdk_dir = os.path.abspath(sys.argv[1])
    for r in RUNS:
        run(sdk_dir, *r)


if __name__ == "__main__":
    main()
