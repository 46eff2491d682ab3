"""Job orchestration overhead: tarn against Apache Airflow 3, same run.

Two shapes, each of no-op Python tasks:
  chain:  N tasks, each depending on the one before; the gap is the time
          from one task's work ending to the next one's work starting
          (measured inside the tasks, on this machine's clock) - p50, p99;
  fan-out: M independent tasks; tasks per second from the run's first task
          start to its last task end.

tarn runs them as spark_python_task on a warm cluster (existing_cluster_id),
after a warm-up run as wide as its task parallelism (its workers then warm);
Airflow 3 (standalone: LocalExecutor, SQLite) as PythonOperator tasks, its
times from its metadata database. Prints both and the ratios.
"""

import argparse
import base64
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from tarn_server import start_tarn, tarn_binary  # noqa: E402

NOOP = "import time\nprint('start', time.time())\nprint('end', time.time())\n"


def percentile(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


# -- tarn -------------------------------------------------------------------


def tarn_bench(args, home):
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service import jobs, workspace

    env_dir = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tarn" / "envs"
    os.environ["TARN_JOB_PARALLEL_TASKS"] = str(args.parallel)
    proc, url = start_tarn(tarn_binary(args.tarn_bin), home, env_dir)
    try:
        w = WorkspaceClient(host=url, token=(home / "token").read_text().strip(), auth_type="pat")
        cluster = w.clusters.create_and_wait(cluster_name="bench", spark_version="16.4.x-scala2.13", num_workers=0)
        w.workspace.mkdirs("/bench")
        w.workspace.import_("/bench/noop.py", content=base64.b64encode(NOOP.encode()).decode(),
                            format=workspace.ImportFormat.AUTO, overwrite=True)

        def task(i, depends):
            return jobs.Task(task_key=f"t{i}", existing_cluster_id=cluster.cluster_id,
                             depends_on=[jobs.TaskDependency(task_key=d) for d in depends],
                             spark_python_task=jobs.SparkPythonTask(python_file="/bench/noop.py"))

        def times(run):
            out = []
            for t in run.tasks:
                logs = w.jobs.get_run_output(t.run_id).logs.split()
                out.append((float(logs[1]), float(logs[3])))
            return out

        # A warm-up run as wide as tarn's task parallelism, so the timed runs
        # find warm workers (as on a warm cluster) rather than starting them.
        warm = w.jobs.create(name="warm", tasks=[task(i, []) for i in range(args.parallel)])
        w.jobs.run_now_and_wait(warm.job_id)

        chain = w.jobs.create(name="chain", tasks=[task(i, [f"t{i - 1}"] if i else []) for i in range(args.chain)])
        run = w.jobs.run_now_and_wait(chain.job_id, timeout=__import__("datetime").timedelta(hours=1))
        assert run.state.result_state == jobs.RunResultState.SUCCESS, run.state
        spans = sorted(times(run))
        gaps = [(b[0] - a[1]) * 1000 for a, b in zip(spans, spans[1:])]

        fan = w.jobs.create(name="fanout", max_concurrent_runs=1, tasks=[task(i, []) for i in range(args.fanout)])
        run = w.jobs.run_now_and_wait(fan.job_id, timeout=__import__("datetime").timedelta(hours=1))
        assert run.state.result_state == jobs.RunResultState.SUCCESS, run.state
        spans = sorted(times(run))
        wall = max(e for _, e in spans) - spans[0][0]
        # Where a slow fan-out lost its time: the longest pauses between task starts.
        pauses = sorted((b[0] - a[0]) * 1000 for a, b in zip(spans, spans[1:]))[-3:]
        notes = [f"fanout: longest pauses between task starts {', '.join(f'{p:.0f}' for p in pauses)} ms"]
        return {"gaps_ms": gaps, "fanout_tasks_per_s": args.fanout / wall, "fanout_wall_s": wall, "notes": notes}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


# -- Airflow ----------------------------------------------------------------

DAG = """
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.standard.operators.python import PythonOperator

def noop():
    pass

with DAG("chain", schedule=None, start_date=datetime(2024, 1, 1), catchup=False):
    previous = None
    for i in range({chain}):
        t = PythonOperator(task_id=f"t{{i}}", python_callable=noop)
        if previous is not None:
            previous >> t
        previous = t

with DAG("fanout", schedule=None, start_date=datetime(2024, 1, 1), catchup=False, max_active_tasks={fanout}):
    for i in range({fanout}):
        PythonOperator(task_id=f"t{{i}}", python_callable=noop)
"""


def airflow_bench(args, home):
    bin_dir = Path(sys.executable).parent
    dags = home / "dags"
    dags.mkdir(parents=True)
    (dags / "bench.py").write_text(DAG.format(chain=args.chain, fanout=args.fanout))
    env = dict(
        os.environ,
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
        AIRFLOW__API__PORT=str(args.airflow_port),
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{args.airflow_port}/execution/",
        PATH=f"{bin_dir}:{os.environ['PATH']}",
    )
    airflow = lambda *a: subprocess.run([str(bin_dir / "airflow"), *a], env=env, capture_output=True, text=True)  # noqa: E731
    log = open(home / "standalone.log", "w")
    proc = subprocess.Popen([str(bin_dir / "airflow"), "standalone"], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.time() + 600
        while "chain" not in airflow("dags", "list", "-o", "plain").stdout or \
                "fanout" not in airflow("dags", "list", "-o", "plain").stdout:
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError("Airflow did not load the DAGs: " + (home / "standalone.log").read_text()[-2000:])
            time.sleep(2)
        results = {}
        notes = []
        for dag in ("chain", "fanout"):
            airflow("dags", "unpause", dag)
            run_id = f"bench-{dag}"
            started = airflow("dags", "trigger", dag, "--run-id", run_id)
            if started.returncode != 0:
                raise RuntimeError(f"airflow dags trigger {dag}: {started.stderr[-2000:]}")
            n = args.chain if dag == "chain" else args.fanout
            progress, since = -1, time.time()
            while True:
                db = sqlite3.connect(home / "airflow.db")
                done = db.execute(
                    "SELECT count(*) FROM task_instance WHERE dag_id=? AND run_id=? AND state='success'", (dag, run_id)
                ).fetchone()[0]
                failed = db.execute(
                    "SELECT count(*) FROM task_instance WHERE dag_id=? AND run_id=? AND state='failed'", (dag, run_id)
                ).fetchone()[0]
                if done != progress:
                    progress, since = done, time.time()
                stalled = time.time() - since > args.stall
                if stalled:
                    notes.append(f"{dag}: no task finished for {args.stall} s after {done} of {n} "
                                 f"(scheduler alive: {proc.poll() is None}); measured over those")
                if done == n or failed or stalled:
                    rows = db.execute(
                        "SELECT task_id, start_date, end_date FROM task_instance WHERE dag_id=? AND run_id=?",
                        (dag, run_id),
                    ).fetchall()
                    db.close()
                    break
                db.close()
                time.sleep(1)
            if failed:
                raise RuntimeError(f"Airflow's {dag} run failed")
            if stalled and dag == "chain" and done < 2:
                raise RuntimeError("Airflow's chain made no progress: " + "; ".join(notes))
            parse = lambda s: datetime.fromisoformat(s).timestamp()  # noqa: E731
            spans = {t: (parse(s), parse(e)) for t, s, e in rows if s and e}
            results[dag] = spans
        chain = [results["chain"][f"t{i}"] for i in range(args.chain) if f"t{i}" in results["chain"]]
        gaps = [(b[0] - a[1]) * 1000 for a, b in zip(chain, chain[1:])]
        fan = list(results["fanout"].values())
        wall = max(e for _, e in fan) - min(s for s, _ in fan)
        return {"gaps_ms": gaps, "fanout_tasks_per_s": len(fan) / wall, "fanout_wall_s": wall, "notes": notes}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chain", type=int, default=100)
    parser.add_argument("--fanout", type=int, default=1000)
    parser.add_argument("--systems", default="tarn,airflow")
    parser.add_argument("--tarn-bin")
    parser.add_argument("--parallel", type=int, default=8, help="tarn's TARN_JOB_PARALLEL_TASKS")
    parser.add_argument("--airflow-port", type=int, default=28793)
    parser.add_argument("--stall", type=int, default=120, help="seconds without a finished Airflow task before giving up")
    parser.add_argument("--json")
    args = parser.parse_args()
    out = {}
    for system in args.systems.split(","):
        home = Path(tempfile.mkdtemp(prefix=f"bench-jobs-{system}-"))
        out[system] = (tarn_bench if system == "tarn" else airflow_bench)(args, home)
        shutil.rmtree(home, ignore_errors=True)  # kept when the run failed, to read its logs
        r = out[system]
        for note in r.get("notes", []):
            print(f"{system:8} note: {note}")
        print(f"{system:8} chain of {args.chain}: gap p50 {percentile(r['gaps_ms'], 50):9.1f} ms  "
              f"p99 {percentile(r['gaps_ms'], 99):9.1f} ms | fan-out of {args.fanout}: "
              f"{r['fanout_tasks_per_s']:8.1f} tasks/s ({r['fanout_wall_s']:.1f} s)", flush=True)
    if "tarn" in out and "airflow" in out:
        t, a = out["tarn"], out["airflow"]
        p50 = percentile(a["gaps_ms"], 50) / percentile(t["gaps_ms"], 50)
        p99 = percentile(a["gaps_ms"], 99) / percentile(t["gaps_ms"], 99)
        fan = t["fanout_tasks_per_s"] / a["fanout_tasks_per_s"]
        print(f"ratios (Airflow / tarn): chain gap p50 {p50:.1f}x, p99 {p99:.1f}x; fan-out throughput {fan:.1f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
