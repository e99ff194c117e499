"""`psa cloud ...`: the wiring of the SageMaker tools of the study (their script names:
psa.clusters.sagemaker.SCRIPTS) and of the sharded plan's (launch --shards, collect, status, cost --shards).
Each subcommand reads the AWS configuration, opens one `Cloud`, calls its module and prints rich
tables; a per-job problem is printed and the run goes on, while an AWS failure that stops the
whole tool (no credentials, no bucket) is a user error."""

import argparse
import functools
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from psa.cli import cloud_job, options
from psa.clusters.sagemaker import FAMILY, cost, launch, logparse, logs, results, sharded, storage
from psa.clusters.sagemaker.aws import Cloud, describe, load_config
from psa.clusters.sagemaker.files import DEFAULT_JOBS_FILE, read_jobs_file
from psa.engine import costmodel
from psa.errors import PSAError
from psa.files import write_json
from psa.progress import make_console
from psa.store import DEFAULT_STORE, Store
from psa.study import series
from psa.study.results import default_path, write_summary, write_trials
from psa.trial.modes import MODES

console = make_console()


def _aws(run):
    @functools.wraps(run)
    def guarded(args):
        try:
            run(args)
        except (ClientError, BotoCoreError) as error:
            raise PSAError(f"AWS: {describe(error)}") from None

    return guarded


def _open(args):
    config = load_config(args.env_file)
    return config, Cloud(config.region)


def _where(config, dry_run: bool) -> tuple[str, str]:
    """The S3 bucket and prefix; a dry run without them shows the settings' names instead."""
    try:
        return config.bucket, config.prefix
    except PSAError:
        if not dry_run:
            raise
        return "$S3_BUCKET_NAME", "$S3_PREFIX"


def _problems(problems: list[str], what: str) -> None:
    for problem in problems:
        console.print(f"[yellow]warning:[/] {problem}", soft_wrap=True)  # whole lines, for grep
    if problems:
        console.print(f"[yellow]{len(problems)} {what} had problems (listed above); the rest completed[/]")


def _reconstruct(args, config, cloud) -> None:
    found, rejected = results.reconstruct(cloud, config.bucket, config.prefix, args.jobs_file)
    _problems(rejected, "job folders")
    console.print(f"Found {len(found)} jobs under s3://{config.bucket}/{config.prefix}/; wrote {args.jobs_file}")
    for name in found[:5]:
        console.print(f"  {name}")
    if len(found) > 5:
        console.print(f"  ... and {len(found) - 5} more")


# ------------------------------------------------------------------------------------ tools


def _split(args, shards_count: int, instance_type: str) -> sharded.Plan:
    """The sharded plan of the command line's grid (the split by the cost model, or by a bench file)."""
    measured = costmodel.read_measured(args.cost_model) if args.cost_model else None
    speed = costmodel.INSTANCE_SPEED.get(instance_type)
    if speed is None and not measured:
        raise PSAError(
            f"no speed known for {instance_type}: pass --cost-model (a `psa bench --estimate-sweep --json` "
            f"file measured on its GPU)"
        )
    return sharded.split(options.run_settings(args), shards_count, speed or 1.0, measured)


@_aws
def run_launch(args) -> None:
    # A dry run only shows the plan: it needs no credentials and never contacts AWS.
    config = load_config(args.env_file)
    cloud = None if args.dry_run else Cloud(config.region)
    instance_type = args.instance_type or config.instance_type
    if args.shards:
        plan = _split(args, args.shards, instance_type)
        if not args.dry_run:
            plan = sharded.settle(cloud, config.bucket, config.prefix, plan)
        console.print(
            f"plan {plan.id}: {len(plan.archs)} architectures in {len(plan.shards)} shards "
            f"(collect with `psa cloud collect --plan {plan.id}`)"
        )
        steps = launch.shard_steps(plan, *_where(config, args.dry_run))
    else:
        run = options.run_settings(args)
        steps = launch.cell_steps(list(run.archs), run.modes)
    if args.dry_run:
        console.print(launch.table(steps, "Launch plan (dry run: AWS not asked, nothing launched)"))
        return
    launch.look_up(cloud, steps, args.force_rerun)
    launch.launch(
        cloud, config, steps, options.run_settings(args), args.jobs_file, args.retry_wait, instance_type, args.data_dir
    )
    console.print(launch.table(steps, "Launch"))
    failed = [s for s in steps if s.error]
    _problems([f"{' '.join(s.what)}: {s.error}" for s in failed], "jobs")
    console.print(
        f"{sum(s.job is not None for s in steps)} launched, {sum(not s.launch for s in steps)} skipped, "
        f"{len(failed)} not launched; job names in {args.jobs_file}"
    )
    if failed:
        raise PSAError(f"{len(failed)} of {len(steps)} jobs could not be launched (see the table); run again to retry")


@_aws
def run_results(args) -> None:
    config, cloud = _open(args)
    trials, problems = results.read_bounties(cloud, config.bucket, config.prefix, options.config_archs(args))
    _problems(problems, "cells")
    summary, table = default_path("summary", FAMILY, args.out), default_path("trials", FAMILY, args.out)
    # The study's plan is all six modes: a cell without a job yet is N/A, as in the study's tables.
    write_summary(summary, trials, FAMILY, modes=MODES)
    write_trials(table, trials, FAMILY, modes=MODES)
    console.print(f"Wrote {summary} and {table}")


@_aws
def run_reconstruct(args) -> None:
    _reconstruct(args, *_open(args))


@_aws
def run_storage(args) -> None:
    config, cloud = _open(args)
    report, problems = storage.estimate(cloud, config.bucket, config.prefix, read_jobs_file(args.jobs_file))
    for table in storage.tables(report, args.detailed):
        console.print(table)
    _problems(problems, "jobs")
    write_json(args.out, report)
    console.print(f"Wrote {args.out}")


@_aws
def run_logs(args) -> None:
    config, cloud = _open(args)
    if args.reconstruct_jobs:
        _reconstruct(args, config, cloud)
    results = logs.download(cloud, read_jobs_file(args.jobs_file), args.out, args.force)
    _problems([r.error for r in results if r.error], "jobs")
    done = [r for r in results if not r.error]
    console.print(
        f"{len(done)} jobs downloaded ({sum(r.skipped for r in done)} already there), "
        f"{sum(len(r.files) for r in done)} log files in {args.out}"
    )


def run_parse_logs(args) -> None:
    curves, problems = logparse.parse_logs(args.logs_dir)
    _problems(problems, "jobs or trials")
    for rows_of, suffix in ((series.study(curves), ""), (series.per_trial(curves), "_per_trial")):
        for rows, kind in zip(rows_of, ("convergence", "lkg_growth")):
            path = default_path(f"trials_{kind}{suffix}", FAMILY, args.out)
            series.write_series(path, rows, kind, FAMILY)
            console.print(f"Wrote {path} ({len(rows)} rows)")


@_aws
def run_collect(args) -> None:
    config, cloud = _open(args)
    plan = sharded.load(cloud, config.bucket, config.prefix, args.plan)
    store = Store(args.store)
    try:
        before = store.counts().get("complete", 0)
        found = sharded.survey(cloud, config.bucket, config.prefix, plan, into=store)
        added = store.counts().get("complete", 0) - before
    finally:
        store.close()
    console.print(sharded.table(plan, found, cost.price_per_hour(config.instance_type, args.price_per_hour)))
    _problems([f"shard {s.k}: {s.problem}" for s in found if s.problem], "shards")
    console.print(f"{added} trials added to {args.store} (export with `psa export --store {args.store}`)")


@_aws
def run_status(args) -> None:
    config, cloud = _open(args)
    plan = sharded.load(cloud, config.bucket, config.prefix, args.plan)
    found = sharded.survey(cloud, config.bucket, config.prefix, plan)
    console.print(sharded.table(plan, found, cost.price_per_hour(config.instance_type, args.price_per_hour)))


def run_plan_cost(args) -> None:
    """`cost --shards`: what sharded plans of the grid would take, before anything is launched."""
    instance_type = args.instance_type or load_config(args.env_file).instance_type
    price = cost.price_per_hour(instance_type, args.price_per_hour)
    plans = [_split(args, n, instance_type) for n in args.shards]
    console.print(cost.plan_table(plans, instance_type, price, costmodel.STARTUP, bool(args.cost_model)))


@_aws
def run_cost(args) -> None:
    if args.shards:
        return run_plan_cost(args)
    config, cloud = _open(args)
    instance_type = args.instance_type or config.instance_type
    price = cost.price_per_hour(instance_type, args.price_per_hour)
    report, problems = cost.estimate(cloud, read_jobs_file(args.jobs_file), instance_type, price)
    console.print(cost.table(report))
    _problems(problems, "jobs")
    write_json(args.out, report)
    console.print(f"Wrote {args.out}")


# ----------------------------------------------------------------------------------- parser


def _out(parser, default: Path, what: str) -> None:
    parser.add_argument("--out", type=Path, default=default, help=f"{what} (default: {default})")
    options.alias(parser, "--output-dir", "--output", dest="out", type=Path)


def configure(parser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--env-file", default=None, help="settings file (default: .env, then aws/sagemaker/.env)")
    jobs = argparse.ArgumentParser(add_help=False)
    jobs.add_argument(
        "--jobs-file",
        type=Path,
        default=DEFAULT_JOBS_FILE,
        help=f"job names, one a line (default: {DEFAULT_JOBS_FILE})",
    )
    grid = argparse.ArgumentParser(add_help=False)
    options.add_run(grid, trials=10, meta_loops=100)
    grid.add_argument("--instance-type", default=None, help="default: the INSTANCE_TYPE setting (ml.g4dn.xlarge)")
    grid.add_argument(
        "--cost-model",
        type=Path,
        default=None,
        help="`psa bench --estimate-sweep --json` file measured on the instance's GPU (default: the "
        "H100-fitted model scaled by the GPU's speed, psa.engine.costmodel)",
    )
    fleet_plan = argparse.ArgumentParser(add_help=False)
    fleet_plan.add_argument("--plan", required=True, help="the plan's id, as `launch --shards` printed it")
    fleet_plan.add_argument(
        "--price-per-hour",
        type=options.POSITIVE,
        default=None,
        help="USD per hour (default: the known price of the INSTANCE_TYPE setting)",
    )
    sub = parser.add_subparsers(dest="cloud_command", required=True, metavar="TOOL")

    p = sub.add_parser(
        "launch",
        parents=[common, jobs, grid],
        help="the study's jobs (one per architecture x mode), or N shards of the grid (--shards)",
    )
    p.add_argument(
        "--shards",
        type=options.whole(1),
        default=None,
        help="split the grid into this many jobs of whole architectures, balanced by estimated cost",
    )
    options.add_data_dir(p)
    p.add_argument("--force-rerun", action="store_true", help="launch even cells whose latest job completed or runs")
    p.add_argument("--dry-run", action="store_true", help="print the plan, launch nothing")
    p.add_argument(
        "--retry-wait",
        type=options.NON_NEGATIVE,
        default=30.0,
        help="first wait (s) after throttling or ResourceLimitExceeded, doubled each retry (default: 30)",
    )
    p.set_defaults(func=run_launch)

    cloud_job.configure(
        sub.add_parser("job", help="the training job's entry point: train the trials, write /opt/ml/model")
    )

    p = sub.add_parser("results", parents=[common], help="summary and trials tables from the jobs' model.tar.gz")
    options.add_configs(p, None, "those expected, in table order", "the ones found")
    _out(p, Path("results"), "folder of the tables")
    p.set_defaults(func=run_results)

    p = sub.add_parser("reconstruct-jobs", parents=[common, jobs], help="rebuild the jobs file from the S3 job folders")
    p.set_defaults(func=run_reconstruct)

    p = sub.add_parser("storage", parents=[common, jobs], help="S3 storage of the jobs, by file type and per job")
    p.add_argument("--detailed", action="store_true", help="also a table per job")
    _out(p, storage.DEFAULT_REPORT, "the JSON report")
    p.set_defaults(func=run_storage)

    p = sub.add_parser("logs", parents=[common, jobs], help="download the jobs' CloudWatch logs")
    p.add_argument("--reconstruct-jobs", action="store_true", help="rebuild the jobs file from S3 first")
    _out(p, logs.DEFAULT_LOGS_DIR, "folder of the logs")
    p.add_argument("--force", action="store_true", help="download again what is already there")
    p.set_defaults(func=run_logs)

    p = sub.add_parser("parse-logs", help="convergence and LKG growth tables from downloaded logs")
    p.add_argument("--logs-dir", type=Path, default=logs.DEFAULT_LOGS_DIR, help=f"default: {logs.DEFAULT_LOGS_DIR}")
    _out(p, Path("results"), "folder of the tables")
    p.set_defaults(func=run_parse_logs)

    p = sub.add_parser(
        "cost",
        parents=[common, jobs, grid],
        help="billable time and cost of the jobs, or (--shards) of sharded plans of the grid before launch",
    )
    p.add_argument(
        "--shards",
        type=lambda text: [options.whole(1)(n) for n in text.split(",")],
        default=None,
        help="estimate sharded plans of the grid with these shard counts instead, e.g. 1,4,16 (no AWS needed)",
    )
    p.add_argument(
        "--price-per-hour",
        type=options.POSITIVE,
        default=None,
        help="USD per hour (default: the known price of ml.g4dn.xlarge)",
    )
    _out(p, cost.DEFAULT_REPORT, "the JSON report")
    p.set_defaults(func=run_cost)

    p = sub.add_parser(
        "collect",
        parents=[common, fleet_plan],
        help="merge a sharded plan's results stores (finished or running) into one local store",
    )
    p.add_argument("--store", default=DEFAULT_STORE, help=f"local results store (default: {DEFAULT_STORE})")
    p.set_defaults(func=run_collect)

    p = sub.add_parser("status", parents=[common, fleet_plan], help="a sharded plan's jobs: trials done, cost so far")
    p.set_defaults(func=run_status)
