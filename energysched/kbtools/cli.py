"""``energysched kb show`` and ``energysched bench run``.

Heavy modules (aiohttp sessions, the bench package) are imported inside
the handlers, so building the parser stays cheap.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from energysched.contract import API_VERSION, PROFILE_PLURAL, WORKLOAD_TYPES
from energysched.kb.io import REPO_KB_DIR

DEFAULT_NODES_DIR = REPO_KB_DIR / "nodes"
DEFAULT_PROFILES_DIR = REPO_KB_DIR / "profiles"


def add_parsers(sub: Any) -> None:
    _add_kb(sub)
    _add_bench(sub)


# -- kb show ---------------------------------------------------------------------------------


def _add_kb(sub: Any) -> None:
    p = sub.add_parser("kb", help="the knowledge base (EnergyProfiles)")
    ksub = p.add_subparsers(dest="kb_action", required=True, metavar="ACTION")
    show = ksub.add_parser(
        "show",
        help="nodes x workload types: performance, power, efficiency, and each node's profile",
        description=(
            "Show which EnergyProfile every node resolves to (most specific nodeSelector wins, "
            "then the name that sorts first: the scheduler's rule) and its figures per "
            "workload type. From the cluster (Nodes and EnergyProfiles) by default, or offline "
            "from files with --profiles/--nodes (default kb/profiles and kb/nodes)."
        ),
    )
    show.add_argument("--kubeconfig", help="kubeconfig (default: $KUBECONFIG, else in-cluster)")
    show.add_argument(
        "--profiles",
        type=Path,
        metavar="DIR",
        help="offline: EnergyProfile YAML files (default kb/profiles)",
    )
    show.add_argument(
        "--nodes",
        type=Path,
        metavar="DIR",
        help="offline: node descriptions or Node objects (default kb/nodes)",
    )
    show.add_argument(
        "--offline",
        action="store_true",
        help="read kb/profiles and kb/nodes instead of the cluster",
    )
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(handler=_kb_show)


def _yaml_objects(directory: Path) -> list[Mapping[str, Any]]:
    files = (
        sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml"))
        if directory.is_dir()
        else [directory]
    )
    objects: list[Mapping[str, Any]] = []
    for file in files:
        for doc in yaml.safe_load_all(file.read_text(encoding="utf-8")):
            if isinstance(doc, Mapping) and isinstance(doc.get("items"), list):
                objects.extend(i for i in doc["items"] if isinstance(i, Mapping))
            elif isinstance(doc, Mapping):
                objects.append(doc)
    return objects


async def _cluster_objects(
    kubeconfig: str | None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    from energysched.kube.client import ApiError, KubeClient, api_path
    from energysched.kube.config import load_access

    warnings = []
    async with KubeClient(load_access(kubeconfig), qps=0) as kube:
        nodes = (await kube.list_all(api_path("v1", "nodes")))["items"]
        try:
            profiles = (await kube.list_all(api_path(API_VERSION, PROFILE_PLURAL)))["items"]
        except ApiError as exc:
            if not exc.not_found:
                raise
            profiles = []
            warnings.append("the EnergyProfile CRD is not installed: no profiles")
    return nodes, profiles, warnings


def _kb_show(args: argparse.Namespace) -> int:
    from energysched.kb.io import load_objects, load_profiles
    from energysched.kb.show import kb_table, nodes_from_objects, render_table
    from energysched.kb.validate import unit_conflicts
    from energysched.kube.client import ApiError
    from energysched.kube.config import KubeConfigError

    offline = args.offline or args.profiles is not None or args.nodes is not None
    if offline and args.kubeconfig:
        print(
            "energysched kb show: --kubeconfig reads the cluster; --profiles/--nodes/"
            "--offline read files: choose one",
            file=sys.stderr,
        )
        return 2
    warnings: list[str] = []
    if offline:
        profiles_dir = args.profiles or DEFAULT_PROFILES_DIR
        nodes_dir = args.nodes or DEFAULT_NODES_DIR
        try:
            node_objects = _yaml_objects(nodes_dir)
        except (OSError, yaml.YAMLError) as exc:
            print(f"energysched kb show: {nodes_dir}: {exc}", file=sys.stderr)
            return 1
        loaded = load_profiles(profiles_dir)
        source = f"files: {profiles_dir}, {nodes_dir}"
    else:
        try:
            raw_nodes, raw_profiles, warnings = asyncio.run(_cluster_objects(args.kubeconfig))
        except (KubeConfigError, ApiError) as exc:
            print(f"energysched kb show: {exc}", file=sys.stderr)
            return 1
        node_objects = list(raw_nodes)
        loaded = load_objects(
            (f"EnergyProfile/{(p.get('metadata') or {}).get('name')}", p) for p in raw_profiles
        )
        source = "cluster"
    nodes = nodes_from_objects(node_objects)
    kb = loaded.knowledge_base()
    rows = kb_table(nodes, kb)
    invalid: list[dict[str, Any]] = [
        {
            "origin": f.origin,
            "name": f.failure.name or None,
            "errors": [str(e) for e in f.failure.errors],
        }
        for f in loaded.failures
    ]
    if not offline and invalid:
        warnings.append(
            "invalid profiles are left out here; a running scheduler keeps using the last "
            "valid version of an edited profile (see its Valid condition)"
        )
    warnings.extend(unit_conflicts(loaded.profiles))
    if args.json:
        doc = {
            "source": source,
            "workloads": list(WORKLOAD_TYPES),
            "nodes": sorted(n.name for n in nodes),
            "profiles": sorted(kb.profiles),
            "rows": [r.as_dict() for r in rows],
            "invalid": invalid,
            "warnings": warnings,
        }
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print(render_table(rows) if rows else "no nodes")
    for item in invalid:
        print(f"invalid: {item['origin']}: " + "; ".join(item["errors"]), file=sys.stderr)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


# -- bench run -------------------------------------------------------------------------------


def _add_bench(sub: Any) -> None:
    p = sub.add_parser("bench", help="benchmark nodes and turn the results into EnergyProfiles")
    bsub = p.add_subparsers(dest="bench_action", required=True, metavar="ACTION")
    run = bsub.add_parser(
        "run",
        help="one benchmark Job per Ready node -> EnergyProfile manifests",
        description=(
            "Run the energysched-bench image as one Job per Ready node (pinned by hostname), "
            "wait for each, read the result from the pod's log and convert it into an "
            "EnergyProfile manifest per node (written to --out, applied with --apply). "
            "Performance is measured; power only where the bench has a power source at the "
            "wall (pass e.g. --bench-arg=--power --bench-arg=shelly ...). Elsewhere power is "
            "taken from --power-from and marked 'estimated', or the node is refused. "
            "Simulated (KWOK) nodes run NO container: no kernel runs there and no result can "
            "come back; they are skipped unless --include-simulated. For a simulated cluster, "
            "run `python -m energysched_bench --json` on real machines and pass the output "
            "with --local-results: it takes the same extraction and conversion path."
        ),
    )
    run.add_argument("--kubeconfig", help="kubeconfig (default: $KUBECONFIG, else in-cluster)")
    run.add_argument("--image", help="the energysched-bench image (required for Jobs)")
    run.add_argument("--namespace", default="energysched", help="namespace of the Jobs")
    run.add_argument(
        "--node",
        action="append",
        default=[],
        dest="nodes",
        metavar="NODE",
        help="benchmark only this node (repeatable; default every Ready node)",
    )
    run.add_argument(
        "--timeout",
        type=float,
        default=1800.0,
        metavar="S",
        help="seconds to wait for all Jobs (default %(default)s)",
    )
    run.add_argument(
        "--bench-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for `python -m energysched_bench` (repeatable; never a "
        "password: see --shelly-password-secret)",
    )
    run.add_argument(
        "--shelly-password-secret",
        metavar="NAME[/KEY]",
        help="a Secret in --namespace holding the plug's password (key 'password' unless "
        "given): mounted into each Job and read from the file, so it is in neither the "
        "Job's spec nor the process list",
    )
    run.add_argument(
        "--gpu-node",
        action="append",
        default=[],
        metavar="NODE",
        help="request one nvidia.com/gpu for this node's Job (repeatable)",
    )
    run.add_argument("--gpu-runtime-class", help="runtimeClassName for GPU Jobs (k3s: nvidia)")
    run.add_argument(
        "--include-simulated",
        action="store_true",
        help="create Jobs on KWOK nodes too (they never produce a result; "
        "exercises the Job path only)",
    )
    run.add_argument("--keep-jobs", action="store_true", help="do not delete the Jobs")
    run.add_argument(
        "--local-results",
        action="append",
        type=Path,
        default=[],
        metavar="PATH",
        help="use these result files (JSON, --json output, pod logs; a directory: "
        "its *.json/*.log/*.txt) instead of running Jobs",
    )
    run.add_argument(
        "--power-from",
        action="append",
        type=Path,
        default=[],
        metavar="PATH",
        help="profiles whose power figures fill in where power was not measured (marked estimated)",
    )
    run.add_argument(
        "--gpu-for",
        default="training",
        help="workloads whose GPU figures are used when available (comma list or "
        "'none'; default %(default)s)",
    )
    run.add_argument(
        "--allow-nonstandard",
        action="store_true",
        help="accept results of non-standard kernel sizes (not comparable)",
    )
    run.add_argument(
        "--accept-package-power",
        action="store_true",
        help="accept CPU-package (RAPL) power as powerWatts (provenance says so)",
    )
    run.add_argument(
        "--out",
        type=Path,
        default=Path("bench-profiles"),
        metavar="DIR",
        help="write one manifest per node here (default %(default)s)",
    )
    run.add_argument("--apply", action="store_true", help="server-side apply the manifests")
    run.add_argument("--json", action="store_true", help="print a machine-readable summary")
    run.set_defaults(handler=_bench_run)


def _fail(message: str, code: int = 1) -> int:
    print(f"energysched bench run: {message}", file=sys.stderr)
    return code


def _bench_run(args: argparse.Namespace) -> int:
    from energysched.kb.io import load_profiles
    from energysched.kbtools.fill import (
        ConvertOptions,
        JobOptions,
        collect_local,
        convert_collected,
        write_manifests,
    )
    from energysched.kube.client import ApiError
    from energysched.kube.config import KubeConfigError

    power_from = None
    if args.power_from:
        loaded = load_profiles(*args.power_from)
        for failure in loaded.failures:
            print(f"warning: --power-from {failure}", file=sys.stderr)
        power_from = loaded.knowledge_base()
    gpu_for = (
        ()
        if args.gpu_for == "none"
        else tuple(w.strip() for w in args.gpu_for.split(",") if w.strip())
    )
    convert = ConvertOptions(power_from, gpu_for, args.allow_nonstandard, args.accept_package_power)
    skipped: list[str] = []
    if args.local_results:
        collected = collect_local(args.local_results)
        converted = convert_collected(collected, convert)
        apply_errors: list[str] = []
        if args.apply:
            try:
                apply_errors = asyncio.run(_apply_only(args.kubeconfig, converted))
            except (KubeConfigError, ApiError) as exc:
                return _fail(str(exc))
    else:
        if not args.image:
            return _fail("--image is required to run Jobs (or give --local-results)", 2)
        leaked = [a for a in args.bench_arg if a.split("=", 1)[0] == "--shelly-password"]
        if leaked:
            # The value would sit in the Job's spec (readable by anyone who can read Jobs)
            # and in the node's process list.
            return _fail(
                "--bench-arg=--shelly-password would put the password into the Job's spec "
                "and the process list; put it in a Secret and pass --shelly-password-secret",
                2,
            )
        secret = _secret_ref(args.shelly_password_secret)
        if isinstance(secret, str):
            return _fail(secret, 2)
        options = JobOptions(
            image=args.image,
            namespace=args.namespace,
            timeout=args.timeout,
            nodes=tuple(args.nodes),
            include_simulated=args.include_simulated,
            bench_args=tuple(args.bench_arg),
            gpu_nodes=tuple(args.gpu_node),
            gpu_runtime_class=args.gpu_runtime_class,
            keep_jobs=args.keep_jobs,
            password_secret=secret,
        )
        try:
            converted, apply_errors, skipped, code = asyncio.run(
                _cluster_run(args.kubeconfig, options, convert, args.apply)
            )
        except (KubeConfigError, ApiError) as exc:
            return _fail(str(exc))
        if code:
            return code
    write_manifests([c for c in converted if c.manifest is not None], args.out)
    _report(converted, skipped, apply_errors, args.json)
    failed = [c for c in converted if c.manifest is None]
    return 1 if failed or apply_errors or not converted else 0


def _secret_ref(value: str | None) -> tuple[str, str] | str | None:
    """``NAME`` or ``NAME/KEY`` -> (name, key); a message when malformed."""
    if value is None:
        return None
    name, _, key = value.partition("/")
    key = key or "password"
    if not _DNS_SUBDOMAIN.fullmatch(name) or not _SECRET_KEY.fullmatch(key):
        return (
            f"--shelly-password-secret {value!r}: expected NAME or NAME/KEY (a Secret's name "
            "and one of its keys)"
        )
    return name, key


_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")


def _report(
    converted: Iterable[Any], skipped: list[str], apply_errors: list[str], as_json: bool
) -> None:
    items = list(converted)
    if as_json:
        json.dump(
            {
                "profiles": [
                    {
                        "node": c.node,
                        "origin": c.origin,
                        "path": str(c.path) if c.path else None,
                        "name": c.manifest["metadata"]["name"] if c.manifest else None,
                        "error": c.error,
                        "notes": c.notes,
                    }
                    for c in items
                ],
                "skipped": skipped,
                "applyErrors": apply_errors,
            },
            sys.stdout,
            indent=2,
        )
        sys.stdout.write("\n")
        return
    for c in items:
        if c.manifest is not None:
            print(f"{c.node}: {c.path} ({'; '.join(c.notes)})")
        else:
            print(f"{c.node}: FAILED ({c.origin}): {c.error}", file=sys.stderr)
    for line in skipped:
        print(f"skipped: {line}", file=sys.stderr)
    for err in apply_errors:
        print(f"error: {err}", file=sys.stderr)


async def _apply_only(kubeconfig: str | None, converted: list[Any]) -> list[str]:
    from energysched.kbtools.fill import apply_manifests
    from energysched.kube.client import KubeClient
    from energysched.kube.config import load_access

    async with KubeClient(load_access(kubeconfig), qps=0) as kube:
        return await apply_manifests(kube, converted)


async def _cluster_run(
    kubeconfig: str | None, options: Any, convert: Any, apply: bool
) -> tuple[list[Any], list[str], list[str], int]:
    from energysched.kbtools.fill import (
        apply_manifests,
        convert_collected,
        is_simulated,
        run_jobs,
        select_nodes,
    )
    from energysched.kube.client import ApiError, KubeClient, api_path
    from energysched.kube.config import load_access

    async with KubeClient(load_access(kubeconfig), qps=20, burst=40) as kube:
        node_objects = (await kube.list_all(api_path("v1", "nodes")))["items"]
        sel = select_nodes(node_objects, options)
        skipped = [f"{n}: simulated (KWOK) node, no container runs there" for n in sel.simulated]
        skipped += [f"{n}: not Ready" for n in sel.not_ready]
        skipped += [f"{n}: no such node" for n in sel.unknown]
        if not sel.nodes:
            for line in skipped:
                print(f"skipped: {line}", file=sys.stderr)
            return (
                [],
                [],
                skipped,
                _fail(
                    "no node to benchmark"
                    + (
                        " (every Ready node is simulated by KWOK: feed real results with "
                        "--local-results)"
                        if sel.simulated
                        else ""
                    )
                ),
            )
        try:
            await kube.get(api_path("v1", "namespaces", name=options.namespace))
        except ApiError as exc:
            if not exc.not_found:
                raise
            return (
                [],
                [],
                skipped,
                _fail(
                    f"namespace {options.namespace!r} does not exist; create it "
                    f"(kubectl create namespace {options.namespace}) or pass --namespace"
                ),
            )
        if options.password_secret is not None:
            secret, key = options.password_secret
            try:
                got = await kube.get(api_path("v1", "secrets", options.namespace, secret))
            except ApiError as exc:
                if not exc.not_found:
                    raise
                got = None
            if got is None or key not in (got.get("data") or {}):
                where = f"secret {options.namespace}/{secret}"
                return (
                    [],
                    [],
                    skipped,
                    _fail(
                        f"{where} does not exist"
                        if got is None
                        else f"{where} has no key {key!r} (has: "
                        f"{', '.join(sorted(got.get('data') or {})) or 'none'})"
                    ),
                )
        simulated = {str(o["metadata"]["name"]) for o in node_objects if is_simulated(o)}
        collected = await run_jobs(
            kube,
            sel.nodes,
            options,
            simulated,
            say=lambda m: print(m, file=sys.stderr, flush=True),
        )
        converted = convert_collected(collected, convert)
        errors = await apply_manifests(kube, converted) if apply else []
    return converted, errors, skipped, 0
