#!/usr/bin/env python3
"""Checks a Compose file the way `docker compose config` would, without Docker: the file must
match the Compose Specification's JSON schema (compose-spec.json beside this script), and what
the schema cannot see must hold too: every `depends_on` names a service of the file, every named
volume a service mounts is declared, and every build context, Dockerfile and bind-mounted file
exists (relative paths are relative to the Compose file's folder).

    python3 deploy/schemas/check_compose.py deploy/compose.yaml

Needs PyYAML and jsonschema (scripts/services.sh, ensure_python_tools). Prints one line per
problem and exits 1 if there is any.
"""

import json
import os
import sys

import jsonschema
import yaml

SCHEMA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "compose-spec.json")


def problems(path):
    with open(path, encoding="utf-8") as file:
        # safe_load resolves the `<<: *anchor` merge keys the way Compose does.
        compose = yaml.safe_load(file)
    with open(SCHEMA, encoding="utf-8") as file:
        schema = json.load(file)
    # The schema says draft-07 (as `https://json-schema.org/draft-07/schema`, a spelling
    # jsonschema does not look up).
    validator = jsonschema.Draft7Validator(schema)
    for error in sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(part) for part in error.absolute_path) or "(top level)"
        yield f"schema: {where}: {error.message}"
    if not isinstance(compose, dict):
        return
    base = os.path.dirname(os.path.abspath(path))
    services = compose.get("services") or {}
    volumes = compose.get("volumes") or {}
    for name, service in services.items():
        if not isinstance(service, dict):
            continue
        if "image" not in service and "build" not in service:
            yield f"services/{name}: neither image nor build"
        depends_on = service.get("depends_on") or []
        for other in depends_on if isinstance(depends_on, (list, dict)) else []:
            if other not in services:
                yield f"services/{name}/depends_on: no service {other!r}"
        build = service.get("build")
        if isinstance(build, str):
            build = {"context": build}
        if isinstance(build, dict):
            context = os.path.join(base, build.get("context", "."))
            if not os.path.isdir(context):
                yield f"services/{name}/build: no folder {context}"
            dockerfile = os.path.join(context, build.get("dockerfile", "Dockerfile"))
            if "dockerfile_inline" not in build and not os.path.isfile(dockerfile):
                yield f"services/{name}/build: no Dockerfile {dockerfile}"
        for mount in service.get("volumes") or []:
            if isinstance(mount, str):
                source = mount.split(":")[0] if ":" in mount else None
            elif isinstance(mount, dict):
                source = mount.get("source")
            else:
                source = None
            if not source:
                continue
            if source.startswith((".", "/", "~")):
                if source.startswith(".") and not os.path.exists(os.path.join(base, source)):
                    yield f"services/{name}/volumes: no file or folder {source}"
            elif source not in volumes:
                yield f"services/{name}/volumes: volume {source!r} is not declared"


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: check_compose.py COMPOSE_FILE")
    found = list(problems(sys.argv[1]))
    for problem in found:
        print(f"{sys.argv[1]}: {problem}")
    if found:
        sys.exit(1)
    print(f"{sys.argv[1]}: valid")


if __name__ == "__main__":
    main()
