"""`psa cloud ...`: the SageMaker tools of the study (their script names: psa.cloud.SCRIPTS). Each subcommand reads its settings, opens one
`Cloud`, calls its module and prints rich tables; a per-job problem is printed and the run goes
on, while an AWS failure that stops the whole tool (no credentials, no bucket) is a user error."""

import argparse
import functools
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console

from psa import PSAError, options
from psa.architecture import read_configurations
from psa.cloud import collect, cost, job, launch, logparse, logs, storage
from psa.cloud.client import Cloud, describe
from psa.cloud.files import DEFAULT_JOBS_FILE, read_jobs_file
from psa.cloud.job import FAMILY
from psa.files import write_json
from psa.cloud.settings import load_settings
from psa.modes import parse_modes
from psa.published import CONFIGURATIONS
from psa.results import default_path, write_summary, write_trials
from psa import series
from psa.series import write_series

console = Console(highlight=False)


def _aws(run):
    @functools.wraps(run)
    def guarded(args):
        try:
            run(args)
        except (ClientError, BotoCoreError) as error:
            raise PSAError(f"AWS: {describe(error)}") from None
    return guarded


def _open(args):
    settings = load_settings(args.env_file)
    return settings, Cloud(settings.region)


def _problems(problems: list[str], what: str) -> None:
    for problem in problems:
        console.print(f"[yellow]warning:[/] {problem}", soft_wrap=True)  # whole lines, for grep
    if problems:
        console.print(f"[yellow]{len(problems)} {what} had problems (listed above); the rest completed[/]")


def _reconstruct(args, settings, cloud) -> None:
    found, rejected = collect.reconstruct(cloud, settings.bucket, settings.prefix, args.jobs_file)
    _problems(rejected, "job folders")
    console.print(f"Found {len(found)} jobs under s3://{settings.bucket}/{settings.prefix}/; wrote {args.jobs_file}")
    for name in found[:5]:
        console.print(f"  {name}")
    if len(found) > 5:
        console.print(f"  ... and {len(found) - 5} more")


# ------------------------------------------------------------------------------------ tools

@_aws
def run_launch(args) -> None:
    settings, cloud = _open(args)
    archs, modes = read_configurations(args.configs), parse_modes(args.modes)
    steps = launch.plan(cloud, archs, modes, args.force_rerun)
    if args.dry_run:
        console.print(launch.table(steps, "Launch plan (dry run: nothing launched)"))
        return
    run = launch.Run(args.trials, args.meta_loops, args.seed, args.seeding, options.hyper(args))
    launch.launch(cloud, settings, steps, run, args.jobs_file, args.retry_wait)
    console.print(launch.table(steps, "Launch"))
    failed = [s for s in steps if s.error]
    _problems([f"{s.arch} {s.mode}: {s.error}" for s in failed], "jobs")
    console.print(f"{sum(s.job is not None for s in steps)} launched, {sum(not s.launch for s in steps)} skipped, "
                  f"{len(failed)} not launched; job names in {args.jobs_file}")
    if failed:
        raise PSAError(f"{len(failed)} of {len(steps)} jobs could not be launched (see the table); run again to retry")


@_aws
def run_results(args) -> None:
    settings, cloud = _open(args)
    archs = [str(a) for a in read_configurations(args.configs)] if args.configs else None
    trials, problems = collect.collect(cloud, settings.bucket, settings.prefix, archs)
    _problems(problems, "cells")
    summary, table = default_path("summary", FAMILY, args.output_dir), default_path("trials", FAMILY, args.output_dir)
    write_summary(summary, trials, FAMILY)
    write_trials(table, trials, FAMILY)
    console.print(f"Wrote {summary} and {table}")


@_aws
def run_reconstruct(args) -> None:
    _reconstruct(args, *_open(args))


@_aws
def run_storage(args) -> None:
    settings, cloud = _open(args)
    report, problems = storage.estimate(cloud, settings.bucket, settings.prefix, read_jobs_file(args.jobs_file))
    for table in storage.tables(report, args.detailed):
        console.print(table)
    _problems(problems, "jobs")
    write_json(args.output, report)
    console.print(f"Wrote {args.output}")


@_aws
def run_logs(args) -> None:
    settings, cloud = _open(args)
    if args.reconstruct_jobs:
        _reconstruct(args, settings, cloud)
    results = logs.download(cloud, read_jobs_file(args.jobs_file), args.output_dir, args.force)
    _problems([r.error for r in results if r.error], "jobs")
    done = [r for r in results if not r.error]
    console.print(f"{len(done)} jobs downloaded ({sum(r.skipped for r in done)} already there), "
                  f"{sum(len(r.files) for r in done)} log files in {args.output_dir}")


def run_parse_logs(args) -> None:
    curves, problems = logparse.parse_logs(args.logs_dir)
    _problems(problems, "jobs or trials")
    for rows_of, suffix in ((series.study(curves), ""), (series.per_trial(curves), "_per_trial")):
        for rows, kind in zip(rows_of, ("convergence", "lkg_growth")):
            path = default_path(f"trials_{kind}{suffix}", FAMILY, args.output_dir)
            write_series(path, rows, kind, FAMILY)
            console.print(f"Wrote {path} ({len(rows)} rows)")


@_aws
def run_cost(args) -> None:
    settings, cloud = _open(args)
    instance_type = args.instance_type or settings.instance_type
    price = cost.price_per_hour(instance_type, args.price_per_hour)
    report, problems = cost.estimate(cloud, read_jobs_file(args.jobs_file), instance_type, price)
    console.print(cost.table(report))
    _problems(problems, "jobs")
    write_json(args.output, report)
    console.print(f"Wrote {args.output}")


# ----------------------------------------------------------------------------------- parser

def configure(parser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--env-file", default=None, help="settings file (default: .env, then aws/sagemaker/.env)")
    jobs = argparse.ArgumentParser(add_help=False)
    jobs.add_argument("--jobs-file", type=Path, default=DEFAULT_JOBS_FILE,
                      help=f"job names, one a line (default: {DEFAULT_JOBS_FILE})")
    sub = parser.add_subparsers(dest="cloud_command", required=True, metavar="TOOL")

    p = sub.add_parser("launch", parents=[common, jobs], help="one SageMaker training job per architecture x mode")
    p.add_argument("--configs", type=Path, default=CONFIGURATIONS, help="architectures (default: the published study's 98)")
    p.add_argument("--modes", default="all", help="comma-separated modes (default: all six)")
    job.add_hyperparameters(p)
    p.add_argument("--force-rerun", action="store_true", help="launch even cells whose latest job completed or runs")
    p.add_argument("--dry-run", action="store_true", help="print the plan, launch nothing")
    p.add_argument("--retry-wait", type=options.NON_NEGATIVE, default=30.0,
                   help="first wait (s) after throttling or ResourceLimitExceeded, doubled each retry (default: 30)")
    p.set_defaults(func=run_launch)

    job.configure(sub.add_parser("job", help="the training job's entry point: train the trials, write /opt/ml/model"))

    p = sub.add_parser("results", parents=[common], help="summary and trials tables from the jobs' model.tar.gz")
    p.add_argument("--configs", type=Path, default=None,
                   help="architectures expected, in table order (default: the ones found)")
    p.add_argument("--output-dir", type=Path, default=Path("results"), help="default: results")
    p.set_defaults(func=run_results)

    p = sub.add_parser("reconstruct-jobs", parents=[common, jobs], help="rebuild the jobs file from the S3 job folders")
    p.set_defaults(func=run_reconstruct)

    p = sub.add_parser("storage", parents=[common, jobs], help="S3 storage of the jobs, by file type and per job")
    p.add_argument("--detailed", action="store_true", help="also a table per job")
    p.add_argument("--output", type=Path, default=storage.DEFAULT_REPORT, help=f"default: {storage.DEFAULT_REPORT}")
    p.set_defaults(func=run_storage)

    p = sub.add_parser("logs", parents=[common, jobs], help="download the jobs' CloudWatch logs")
    p.add_argument("--reconstruct-jobs", action="store_true", help="rebuild the jobs file from S3 first")
    p.add_argument("--output-dir", type=Path, default=logs.DEFAULT_LOGS_DIR, help=f"default: {logs.DEFAULT_LOGS_DIR}")
    p.add_argument("--force", action="store_true", help="download again what is already there")
    p.set_defaults(func=run_logs)

    p = sub.add_parser("parse-logs", help="convergence and LKG growth tables from downloaded logs")
    p.add_argument("--logs-dir", type=Path, default=logs.DEFAULT_LOGS_DIR, help=f"default: {logs.DEFAULT_LOGS_DIR}")
    p.add_argument("--output-dir", type=Path, default=Path("results"), help="default: results")
    p.set_defaults(func=run_parse_logs)

    p = sub.add_parser("cost", parents=[common, jobs], help="billable time and cost of the jobs")
    p.add_argument("--instance-type", default=None, help="default: the INSTANCE_TYPE setting")
    p.add_argument("--price-per-hour", type=options.POSITIVE, default=None,
                   help="USD per hour (default: the known price of ml.g4dn.xlarge)")
    p.add_argument("--output", type=Path, default=cost.DEFAULT_REPORT, help=f"default: {cost.DEFAULT_REPORT}")
    p.set_defaults(func=run_cost)

