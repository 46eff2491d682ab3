# A dbt_task's commands, run in the task's execution context (its
# environment, which must hold dbt-databricks). tarn prepends nothing but
# this file and appends one call with the task's settings.
import json
import os
import shlex
import signal
import subprocess
import sys
import tarfile


def _tarn_dbt_die_with_parent():
    # The context's worker may be killed (a timeout, a cancel): dbt goes too.
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except OSError:
        pass


def _tarn_dbt_archive(project, archive):
    # What dbt leaves for the run: its JSON artifacts and its log.
    names = []
    target = os.path.join(project, "target")
    if os.path.isdir(target):
        names += [os.path.join("target", n) for n in sorted(os.listdir(target)) if n.endswith(".json")]
    if os.path.isfile(os.path.join(project, "logs", "dbt.log")):
        names.append(os.path.join("logs", "dbt.log"))
    if not names:
        return
    with tarfile.open(archive, "w:gz") as tar:
        for name in names:
            tar.add(os.path.join(project, name), arcname=name)


def _tarn_dbt_main(task):
    dbt = os.path.join(os.path.dirname(sys.executable), "dbt")
    if not os.path.isfile(dbt):
        raise RuntimeError(
            "dbt is not installed in the task's environment: add dbt-databricks "
            "(for example dbt-databricks==1.10.19) to its environment's dependencies or the task's libraries"
        )
    env = dict(os.environ)
    env["DBT_HOST"] = task["host"]
    env["DBT_ACCESS_TOKEN"] = os.environ.get("DATABRICKS_TOKEN", "")
    env["DBT_PROFILES_DIR"] = task["profiles_dir"]
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    env.setdefault("DBT_USE_COLORS", "false")
    if task.get("tls_ca_file"):
        env["REQUESTS_CA_BUNDLE"] = task["tls_ca_file"]
    project = task["project_dir"]
    try:
        for argv in task["commands"]:
            line = " ".join(shlex.quote(word) for word in argv)
            print(f"$ {line}", flush=True)
            child = subprocess.Popen(
                [dbt] + argv[1:],
                cwd=project,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                preexec_fn=_tarn_dbt_die_with_parent,
            )
            try:
                for out in child.stdout:
                    sys.stdout.write(out)
                code = child.wait()
            except BaseException:
                child.kill()
                child.wait()
                raise
            if code != 0:
                hint = f" ({task['hint']})" if task.get("hint") else ""
                raise RuntimeError(f"dbt command failed with exit code {code}: {line}{hint}")
    finally:
        _tarn_dbt_archive(project, task["archive"])
