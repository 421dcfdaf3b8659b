"""A Spark session for the `churn` commands: checked first (pyspark, Java, a reachable master), quiet, stopped after."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from churn.redact import redact_url

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

#: Spark's master when neither `--master` nor `SPARK_MASTER` says otherwise.
DEFAULT_MASTER = "local[*]"
_CONNECT_TIMEOUT_S = 5.0
_LOG4J = """rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = spark: %p %c{1}: %m%n%ex{short}
"""


class SparkError(ValueError):
    """Spark cannot run here (no pyspark, no Java, a master it cannot reach); one line saying what to do."""


def check_java() -> None:
    """SparkError unless a Java runtime is where Spark looks (JAVA_HOME, else `java` on PATH)."""
    home = os.environ.get("JAVA_HOME")
    java = Path(home, "bin", "java") if home else shutil.which("java")
    if not java or not os.access(java, os.X_OK):
        where = f"JAVA_HOME={home} has no bin/java" if home else "no `java` on PATH"
        raise SparkError(
            f"Spark needs a Java runtime ({where}): run `make system` (Debian's default-jre-headless)"
        )


def check_master(master: str, timeout: float = _CONNECT_TIMEOUT_S) -> None:
    """SparkError unless a `spark://` (or `k8s://`) master accepts a TCP connection within `timeout`
    seconds; `local[…]` needs nothing, other masters (yarn) are left to Spark."""
    if master.startswith("spark://"):
        hosts = master[len("spark://") :].split(",")  # standby masters: spark://h1:7077,h2:7077
        targets = [_host_port(h, 7077) for h in hosts]
    elif master.startswith("k8s://"):
        url = urlsplit(master[len("k8s://") :])
        targets = [(url.hostname or "", url.port or (443 if url.scheme != "http" else 80))]
    else:
        return
    errors = []
    for host, port in targets:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return
        except OSError as exc:
            errors.append(exc.strerror or type(exc).__name__)
    raise SparkError(
        redact_url(
            f"cannot reach the Spark master {master} ({'; '.join(errors)} within {timeout:g} s): "
            "start it, or pick another with --master / SPARK_MASTER (local[*] runs Spark in this process)"
        )
    )


def _host_port(text: str, default: int) -> tuple[str, int]:
    url = urlsplit(f"//{text}")
    return url.hostname or "", url.port or default


def preflight(master: str) -> None:
    """SparkError unless pyspark imports (the `spark` extra), Java is there and the master answers."""
    try:
        import pyspark  # noqa: F401
    except ImportError as exc:
        raise SparkError(
            "the Spark engine needs pyspark: pip install 'churn[spark]' (or `make setup`)"
        ) from exc
    check_java()
    check_master(master)


@contextlib.contextmanager
def session(master: str = DEFAULT_MASTER, app_name: str = "churn-predict") -> Iterator[SparkSession]:
    """A SparkSession on `master`, stopped on leaving (the JVM stays for the next one in this process).

    Checks first, each with one clear line: pyspark installed (the `spark` extra), Java, a
    reachable master. Spark's own logging is cut to errors; its UI and progress bar are off.
    """
    preflight(master)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers run this interpreter, not PATH's
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "PySpark does not yet fully support pandas >= 3"
        from pyspark.sql import SparkSession

    if SparkSession.getActiveSession() is not None:
        raise SparkError("a Spark session is already running in this process: stop it first")
    with tempfile.TemporaryDirectory(prefix="churn-spark-") as tmp:
        conf = Path(tmp, "log4j2.properties")
        conf.write_text(_LOG4J)
        builder = (
            SparkSession.builder.master(master)
            .appName(app_name)
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{conf}")
            .config("spark.executorEnv.PYTHONWARNINGS", "ignore::FutureWarning")
            .config("spark.sql.session.timeZone", "UTC")
        )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                spark = builder.getOrCreate()
        except Exception as exc:
            raise SparkError(redact_url(f"cannot start Spark on {master}: {first_line_of(exc)}")) from exc
        spark.sparkContext.setLogLevel("ERROR")
        try:
            yield spark
        finally:
            spark.stop()


def first_line_of(exc: BaseException) -> str:
    """The first informative line of a (Java or Python) error from Spark."""
    text = str(getattr(exc, "desc", None) or exc).strip()
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("at ", "File ", "Traceback", "JVM stacktrace")):
            return line[:500]
    return type(exc).__name__
