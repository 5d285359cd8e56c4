"""The ``streamwise`` command, every subcommand: serve, render, setup, profile, portraits, config, plan."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from pathlib import Path

from pipelines.config import (
    CONFIG_DIR,
    DEFAULT_DEPLOYMENT,
    DEFAULT_WORKFLOW,
    REPO_ROOT,
    ConfigError,
    load_deployment,
    load_workflow,
)


def _configure_logging(verbose: int) -> None:
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _use_weights(args: argparse.Namespace) -> None:
    """``--weights DIR``: the neural animators' folder, for this process and its drawing workers."""
    weights = getattr(args, "weights", None)
    if weights is None:
        return
    if not Path(weights).is_dir():
        raise ConfigError(f"--weights: {weights} is not a folder; see docs/neural.md for what goes in it")
    os.environ["STREAMWISE_WEIGHTS"] = str(Path(weights).resolve())


def _load_configs(args: argparse.Namespace):
    _use_weights(args)
    workflow = load_workflow(args.workflow)
    deployment = load_deployment(args.deploy, workflow)
    return workflow, deployment


def cmd_render(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from pipelines.offline_render import render_episode
    from pipelines.segments import EpisodeRequest
    from pipelines.stages.models_loaded import load_models

    console = Console(stderr=True)
    workflow, deployment = _load_configs(args)
    if args.quality and args.quality not in [t.name for t in deployment.quality.ladder]:
        raise ConfigError(f"--quality: unknown tier {args.quality!r}; allowed: {[t.name for t in deployment.quality.ladder]}")
    if not 5 <= args.duration <= 3600:
        raise ConfigError(f"--duration: {args.duration} s is out of range; allowed: 5 to 3600 seconds")
    topic = " ".join(args.topic.split())
    if not topic:
        raise ConfigError("--topic: must not be empty")
    with console.status("Loading models (once per process)..."):
        models = load_models(deployment, workflow)
    request = EpisodeRequest(topic=topic, duration_s=args.duration, quality=args.quality)
    columns = (TextColumn("{task.description:<9}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        tasks = {name: bar.add_task(name, total=None) for name in ("written", "voiced", "rendered")}

        def on_progress(p) -> None:
            total = p.total if p.total is not None else max(p.estimated_total, p.written)
            for name, value in (("written", p.written), ("voiced", p.voiced), ("rendered", p.rendered)):
                bar.update(tasks[name], completed=value, total=total)

        result = asyncio.run(render_episode(models, deployment, request, Path(args.out), on_progress=on_progress))
    console.print(
        f"[bold]{result.title}[/bold]: {result.duration_s:.1f} s of video, {result.segments} segments, "
        f"rendered in {result.wall_s:.1f} s (first segment ready after {result.first_segment_s or 0:.2f} s)"
    )
    console.print(f"  video      {result.video}\n  transcript {result.transcript}\n  captions   {result.captions}")
    return 0


def cmd_setup(args: argparse.Namespace) -> int:
    """Prepare model files (assemble the chunked GGUF) and the video studios so the first request pays nothing."""
    from models.script.gguf import resolve_model

    workflow, deployment = _load_configs(args)
    spec = deployment.tasks[workflow.task_of_kind("script")]
    if spec.adapter == "llama_cpp":
        path = resolve_model(spec.params.get("model", "gemma3-270m"), None)
        print(f"script model ready: {path}")
    video = deployment.tasks.get(workflow.task_of_kind("video"))
    if video is not None:
        from models.registry import load_adapter
        from pipelines.stages.drawing import prepare

        t0 = time.perf_counter()
        prepare(load_adapter("video", video.adapter, video.params), deployment.quality.qualities())
        print(f"video studios ready for {', '.join(t.name for t in deployment.quality.ladder)} "
              f"({time.perf_counter() - t0:.1f} s)")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    workflow, deployment = _load_configs(args)
    print(f"ok: workflow {workflow.name!r} ({len(workflow.tasks)} tasks), deployment {deployment.name!r}")
    print("quality ladder: " + ", ".join(f"{t.name} ({t.height}p, {t.fps} fps, x{t.supersample})" for t in deployment.quality.ladder))
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    """Measure every stage and tier on this machine and write configs/profiles/<name>.yaml."""
    import re

    from pipelines.plan.stage_profiles import load_profile, measure

    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", args.name):
        raise ConfigError(f"--name: {args.name!r} is not a file name; use letters, digits, '.', '_' or '-'")
    if not 10 <= args.duration <= 600:
        raise ConfigError(f"--duration: {args.duration} s is out of range; allowed: 10 to 600 seconds")
    _load_configs(args)  # a bad deployment fails here, with its own message
    path = measure(args.name, args.duration, args.deploy, Path(args.out_dir))
    profile = load_profile(path)
    print(f"wrote {path}")
    print(f"  script {profile.script.rtf:.3f} s/s, speech {profile.speech.rtf:.3f} s/s")
    for tier, fit in profile.video.items():
        split = profile.parallel.get(tier, {})
        over = "".join(f", {k} workers {x:.2f}x" for k, x in sorted(split.items()) if k > 1)
        print(f"  video {tier}: {fit.rtf:.3f} s/s (time = {fit.fixed_s:.3f} + {fit.per_media_s:.3f} x media s){over}")
    return 0


def cmd_portraits(args: argparse.Namespace) -> int:
    """Make each host's portrait for the portrait look once, from its name and a fixed seed."""
    import cv2
    from rich.progress import Progress

    from models.video.lipsync.portrait_maker import PROMPT, host_seed, make_portrait

    _, deployment = _load_configs(args)
    spec = deployment.tasks.get("video")
    if spec is None or spec.adapter != "lipsync":
        raise ConfigError(f"{args.deploy}: tasks.video.adapter is not lipsync; portraits are for the portrait look")
    root = Path(spec.params.get("weights") or os.environ.get("STREAMWISE_WEIGHTS") or "")
    if not str(root) or not root.is_dir():
        raise ConfigError("--weights DIR: the folder whose text_to_image/ makes the portraits and portraits/ keeps them")
    files = list(spec.params.get("portraits") or [])
    if len(files) != len(deployment.hosts):
        raise ConfigError(f"{args.deploy}: tasks.video.params.portraits must name {len(deployment.hosts)} files")
    with Progress(transient=False) as bar:
        task = bar.add_task("portraits", total=len(files))
        for host, name in zip(deployment.hosts, files, strict=True):
            target = root / "portraits" / name
            if target.exists() and not args.force:
                bar.console.print(f"{host.name}: kept {target}")
            else:
                image = make_portrait(root / "text_to_image", PROMPT.format(name=host.name), host_seed(host.name),
                                      args.size, args.steps, args.device)
                target.parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(target), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
                bar.console.print(f"{host.name}: made {target}")
            bar.advance(task)
    return 0


def cmd_import_musetalk(args: argparse.Namespace) -> int:
    """Write MuseTalk's released weights into the lip-sync folder's layout under --weights."""
    from models.video.lipsync.musetalk_import import import_musetalk
    from models.video.lipsync.weights import WeightsError

    if not args.weights:
        raise ConfigError("--weights DIR: the folder the lip-sync networks go into (DIR/lipsync/)")
    try:
        folder = import_musetalk(Path(args.source), Path(args.weights))
    except WeightsError as exc:
        raise ConfigError(str(exc)) from None
    print(f"wrote {folder} (unet, vae, whisper); serve with --weights {args.weights}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from server.access import AccessConfigError, AccessPolicy
    from server.app import create_app
    from server.state import Settings, parse_ice_servers, parse_share_ttl

    try:
        _use_weights(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    load_deployment(args.deploy, load_workflow(args.workflow))  # fail fast on a bad config
    try:
        access = AccessPolicy.from_env(dict(os.environ), args.host)
        ice_servers = parse_ice_servers(os.environ.get("STREAMWISE_ICE_SERVERS", ""))
        share_ttl_s = parse_share_ttl(os.environ.get("STREAMWISE_SHARE_TTL_S", ""))
    except (AccessConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    settings = Settings(workflow=Path(args.workflow), deployment=Path(args.deploy), media_dir=Path(args.media_dir),
                        host=args.host, port=args.port, access=access, ice_servers=ice_servers,
                        share_ttl_s=share_ttl_s)
    print(f"StreamWise: loading models, then serving on http://{args.host}:{args.port}/", flush=True)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamwise", description="Generated podcast videos, streamed as they are made.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-v info, -vv debug)")
    sub = parser.add_subparsers(dest="command", required=True)

    def configs(p: argparse.ArgumentParser) -> None:
        p.add_argument("--weights", default=None, metavar="DIR",
                       help="folder of the neural animators' weights and portraits (docs/neural.md)")
        p.add_argument("--workflow", default=str(DEFAULT_WORKFLOW), help="workflow YAML (tasks and inputs)")
        p.add_argument("--deploy", default=str(os.environ.get("STREAMWISE_DEPLOY", DEFAULT_DEPLOYMENT)), help="deployment YAML (adapters, quality ladder)")

    render = sub.add_parser("render", help="write an episode to an MP4 with transcript and captions")
    render.add_argument("--topic", required=True, help="what the hosts talk about")
    render.add_argument("--duration", type=float, default=60.0, help="target length in seconds (5-3600)")
    render.add_argument("--out", default="episode.mp4", help="output MP4; .json transcript and .vtt captions go next to it")
    render.add_argument("--quality", default=None, help="tier name from the ladder (default: the deployment's)")
    configs(render)
    render.set_defaults(func=cmd_render)

    setup = sub.add_parser("setup", help="prepare model files")
    configs(setup)
    setup.set_defaults(func=cmd_setup)

    prof = sub.add_parser("profile", help="measure each stage and tier here; write configs/profiles/NAME.yaml")
    prof.add_argument("--name", default="local", help="profile name (file name under configs/profiles)")
    prof.add_argument("--duration", type=float, default=30.0, help="length of the episode measured (10-600 s)")
    prof.add_argument("--out-dir", default=str(CONFIG_DIR / "profiles"), help="where NAME.yaml goes")
    configs(prof)
    prof.set_defaults(func=cmd_profile)

    portraits = sub.add_parser("portraits", help="make the portrait look's host portraits (text-to-image, cached)")
    portraits.add_argument("--size", type=int, default=512, help="side of the square portrait in pixels")
    portraits.add_argument("--steps", type=int, default=1, help="denoising steps (few-step models: 1 to 4)")
    portraits.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    portraits.add_argument("--force", action="store_true", help="make them again where the files exist")
    configs(portraits)
    portraits.set_defaults(func=cmd_portraits)

    musetalk = sub.add_parser("import-musetalk", help="write MuseTalk's released weights into --weights DIR/lipsync")
    musetalk.add_argument("source", help="MuseTalk's models/ folder (musetalkV15/, sd-vae/, whisper/)")
    musetalk.add_argument("--weights", default=None, metavar="DIR", help="the weights folder to write into")
    musetalk.set_defaults(func=cmd_import_musetalk)

    check = sub.add_parser("config", help="validate the workflow and deployment files")
    configs(check)
    check.set_defaults(func=cmd_config)

    serve = sub.add_parser("serve", help="run the server (REST API, WebRTC, player)")
    serve.add_argument("--host", default=os.environ.get("STREAMWISE_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("STREAMWISE_PORT", "8000")))
    serve.add_argument("--media-dir", default=os.environ.get("STREAMWISE_MEDIA_DIR", str(REPO_ROOT / "data" / "episodes")))
    configs(serve)
    serve.set_defaults(func=cmd_serve)

    try:
        from fleet.report import PLAN_HELP, add_plan_arguments, run_plan
    except ImportError:  # the fleet planner is optional
        pass
    else:
        plan = sub.add_parser("plan", help=PLAN_HELP)
        add_plan_arguments(plan)
        plan.set_defaults(func=run_plan)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
