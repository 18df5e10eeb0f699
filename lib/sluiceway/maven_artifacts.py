"""Pinned Maven artifacts: the lock files' format, their SHA-256, and `mvn` fetching them.

Three things come from Maven Central pinned by a lock in data/: the jars a Spark of our own
needs (runtime_jars), Trino (trino_server) and a Kafka broker (kafka_server). Each lock line
is `group:artifact:version[:extension] sha256`; the file is kept only if its SHA-256 is the
locked one. `mvn` (maven-dependency-plugin, pinned) does the fetching, with the repositories,
mirrors, proxies and credentials of its own settings.xml, always in an empty folder (a
pom.xml in the working directory would add its repositories) and with `--strict-checksums`,
so a transfer that differs from the repository's own checksum already fails in mvn.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from sluiceway.errors import ConfigurationError

# Pinned: without a version mvn takes whichever dependency plugin its super POM names.
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
MVN_TIMEOUT_SECONDS = 1800
# Debian's mvn colours its output even in batch mode with style.color=never.
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
SHA256 = re.compile(r"[0-9a-fA-F]{64}")
CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class PinnedArtifact:
    """One line of a lock: a Maven coordinate (a jar unless `extension` says otherwise) and
    the SHA-256 its file must have."""

    group: str
    artifact: str
    version: str
    sha256: str
    extension: str = "jar"

    @property
    def coordinate(self) -> str:
        """`group:artifact:version`, with `:extension` for anything but a jar (mvn's form)."""
        base = f"{self.group}:{self.artifact}:{self.version}"
        return base if self.extension == "jar" else f"{base}:{self.extension}"

    @property
    def file_name(self) -> str:
        return f"{self.artifact}-{self.version}.{self.extension}"

    @property
    def repository_path(self) -> str:
        """Where any Maven repository, remote or local, keeps the file (the standard layout)."""
        return f"{self.group.replace('.', '/')}/{self.artifact}/{self.version}/{self.file_name}"


def read_lock(lock: Path, *, extension: bool = False) -> list[PinnedArtifact]:
    """A lock's pins in file order; a malformed line names the lock and the line.

    `extension`: the lock's coordinates carry an extension (`group:artifact:version:extension`).
    """
    form = "group:artifact:version:extension" if extension else "group:artifact:version"
    parts_expected = 4 if extension else 3
    pins = []
    for number, line in enumerate(lock.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        fields = text.split()
        parts = fields[0].split(":")
        if len(fields) != 2 or len(parts) != parts_expected or not SHA256.fullmatch(fields[1]):
            raise ConfigurationError(
                f"{lock}:{number}: expected '{form} sha256', got {line.strip()!r}"
            )
        group, artifact, version = parts[:3]
        pins.append(
            PinnedArtifact(
                group, artifact, version, fields[1].lower(), parts[3] if extension else "jar"
            )
        )
    return pins


def lock_line(pin: PinnedArtifact, width: int = 0) -> str:
    """The line `read_lock` reads back as `pin`."""
    return f"{pin.coordinate:<{width}} {pin.sha256}"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def default_local_repository() -> Path:
    """Maven's own local repository, passed to mvn explicitly so fetched paths are known."""
    return Path.home() / ".m2" / "repository"


def run_mvn(
    goal_arguments: Sequence[str],
    *,
    subject: str,
    rerun: str,
    local_repository: Path,
    executable: str = "mvn",
    pom: str | None = None,
    hint: str = "",
) -> str:
    """Run the pinned dependency plugin's goal with mvn in an empty folder (or one holding
    only `pom`); its output. Failures become one ConfigurationError naming `subject` (what
    was being fetched) and `rerun` (the command to run again after fixing it)."""
    mvn = shutil.which(executable)
    if mvn is None:
        raise ConfigurationError(
            f"`{executable}` not found: {subject} is fetched with Maven; install Maven "
            f"(`apt-get install maven`) and run `{rerun}` again"
        )
    command = [
        mvn,
        "--batch-mode",
        "--quiet",
        # A failed transfer is tried again now, not after mvn's cached failure expires (a day).
        "--update-snapshots",
        # A transfer that differs from the repository's own checksum fails here already.
        "--strict-checksums",
        "-Dstyle.color=never",
        *goal_arguments,
        f"-Dmaven.repo.local={local_repository.resolve()}",
    ]
    advice = f"check the network or Maven's settings.xml (proxy, mirrors){hint}"
    try:
        with tempfile.TemporaryDirectory(prefix="sluiceway-mvn-") as folder:
            if pom is not None:
                (Path(folder) / "pom.xml").write_text(pom, encoding="utf-8")
            run = subprocess.run(
                command,
                cwd=folder,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=MVN_TIMEOUT_SECONDS,
                check=False,
            )
    except subprocess.TimeoutExpired as error:
        raise ConfigurationError(
            f"mvn did not fetch {subject} within {MVN_TIMEOUT_SECONDS} s; {advice}"
        ) from error
    if run.returncode != 0:
        # The first [ERROR] line says what failed; the ones after it are mvn's boilerplate.
        errors = re.findall(r"\[ERROR\] (\S.*)", ANSI_ESCAPE.sub("", run.stdout))
        detail = errors[0] if errors else ANSI_ESCAPE.sub("", run.stderr).strip()
        raise ConfigurationError(
            f"mvn could not fetch {subject} (exit {run.returncode}: {detail or 'no output'}); "
            f"{advice}"
        )
    return run.stdout


def mvn_get(
    pin: PinnedArtifact,
    local_repository: Path,
    *,
    rerun: str,
    repository: str | None = None,
    executable: str = "mvn",
) -> Path:
    """`dependency:get` of one pinned file (not its dependencies) into the local repository;
    where it lies there. Its digest is the caller's to check."""
    arguments = [f"{DEPENDENCY_PLUGIN}:get", f"-Dartifact={pin.coordinate}", "-Dtransitive=false"]
    hint = ""
    if repository:
        arguments.append(f"-DremoteRepositories={repository}")
        hint = ", or pass --repository with a Maven mirror"
    run_mvn(
        arguments,
        subject=pin.coordinate,
        rerun=rerun,
        local_repository=local_repository,
        executable=executable,
        hint=hint,
    )
    path = local_repository / pin.repository_path
    if not path.is_file():
        raise ConfigurationError(
            f"mvn could not fetch {pin.coordinate} (exit 0, but no {path}); check Maven's "
            "settings.xml (proxy, mirrors)"
        )
    return path


def project_pom(pins: Iterable[PinnedArtifact], *, transitive: bool) -> str:
    """A throw-away POM depending on `pins`; without `transitive`, on exactly those files."""
    exclusions = (
        ""
        if transitive
        else "<exclusions><exclusion><groupId>*</groupId><artifactId>*</artifactId>"
        "</exclusion></exclusions>"
    )
    dependencies = "".join(
        f"<dependency><groupId>{escape(pin.group)}</groupId>"
        f"<artifactId>{escape(pin.artifact)}</artifactId><version>{escape(pin.version)}</version>"
        f"<type>{escape(pin.extension)}</type>{exclusions}</dependency>\n"
        for pin in pins
    )
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>\n'
        "<groupId>local.sluiceway</groupId><artifactId>pinned-artifacts</artifactId>"
        "<version>0</version><packaging>pom</packaging>\n"
        f"<dependencies>\n{dependencies}</dependencies></project>\n"
    )


def copy_pinned(
    pins: Sequence[PinnedArtifact],
    target: Path,
    local_repository: Path,
    *,
    subject: str,
    rerun: str,
    executable: str = "mvn",
) -> dict[PinnedArtifact, Path]:
    """Have one mvn run fetch every pinned file (none of their dependencies) and copy them
    into `target`; the copies by pin. Their digests are the caller's to check."""
    target.mkdir(parents=True, exist_ok=True)
    run_mvn(
        [
            f"{DEPENDENCY_PLUGIN}:copy-dependencies",
            f"-DoutputDirectory={target.resolve()}",
            "-DincludeScope=runtime",
            "-Dmdep.overWriteReleases=true",
        ],
        subject=subject,
        rerun=rerun,
        local_repository=local_repository,
        executable=executable,
        pom=project_pom(pins, transitive=False),
    )
    return {pin: target / pin.file_name for pin in pins}


def resolve_runtime(
    roots: Sequence[PinnedArtifact],
    local_repository: Path,
    *,
    subject: str,
    rerun: str,
    executable: str = "mvn",
) -> list[PinnedArtifact]:
    """The runtime closure of `roots` as Maven resolves it (their `sha256` is ignored), each
    with the SHA-256 of the file mvn fetched: what a new lock pins. Sorted by coordinate."""
    with tempfile.TemporaryDirectory(prefix="sluiceway-mvn-list-") as folder:
        listing = Path(folder) / "runtime.txt"
        run_mvn(
            [
                f"{DEPENDENCY_PLUGIN}:list",
                "-DincludeScope=runtime",
                "-DoutputAbsoluteArtifactFilename=true",
                f"-DoutputFile={listing}",
            ],
            subject=subject,
            rerun=rerun,
            local_repository=local_repository,
            executable=executable,
            pom=project_pom(roots, transitive=True),
        )
        text = listing.read_text(encoding="utf-8")
    pins = []
    # `   group:artifact:extension:version:scope:/path/to/file` (one per resolved artifact).
    for match in re.finditer(r"^\s+([^:\s]+):([^:\s]+):([^:\s]+):([^:\s]+):\w+:(\S+)", text, re.M):
        group, artifact, extension, version, path = match.groups()
        pins.append(PinnedArtifact(group, artifact, version, sha256_of(Path(path)), extension))
    return sorted(pins, key=lambda pin: pin.coordinate)
