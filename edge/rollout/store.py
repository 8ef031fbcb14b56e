"""On-disk state of the gateway's model rollout: deployed model directories and state file.

Layout under ``{state_dir}/{gateway_id}/models/``
(:attr:`renkei.edge.config.GatewayConfig.models_dir`)::

    state.json                               active/previous versions, attempts, results
    {name}/{version}-{sha256[:12]}/          one deployed release
        manifest.json  model.onnx  signature.json

A release directory is written to a temporary sibling and renamed into place, and
``state.json`` is replaced atomically (write, fsync, rename), so a power cut leaves either
the old or the new state, never a mix. Nothing read from here is trusted: the agent
verifies signature and digests again before loading a model from this directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict, ValidationError

from renkei.core.manifest import MANIFEST_FILE
from renkei.core.signing import ModelSignature, write_signature
from renkei.core.wire import DeployResult, DesiredModel

__all__ = ["ActiveModel", "ModelStore", "RolloutState"]

_STATE_FILE: Final = "state.json"
#: Release directories kept per model name (besides the active one).
_KEEP_PER_NAME: Final = 3


class ActiveModel(BaseModel):
    """A deployed release that is (or was) live, with the signed facts about it."""

    model_config = ConfigDict(extra="forbid")

    name: str
    entry: DesiredModel
    dir: str
    """Release directory, relative to the store root."""


class RolloutState(BaseModel):
    """Contents of ``state.json``."""

    model_config = ConfigDict(extra="forbid")

    v: int = 1
    active: dict[str, ActiveModel] = {}
    """Model name -> deployed release that replaces the config's model at start-up."""
    previous_version: dict[str, str] = {}
    """Model name -> version that ran before the last successful switch."""
    attempted: dict[str, int] = {}
    """Model name -> id of the last deployment attempted (each is attempted once)."""
    results: dict[str, DeployResult] = {}
    """Model name -> result of that attempt (reported on every connect)."""


class ModelStore:
    """The rollout directory of one gateway (see the module docstring).

    Args:
        root: ``{state_dir}/{gateway_id}/models``; created if missing.

    Raises:
        OSError: the directory cannot be created.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.state = self._load()

    def _load(self) -> RolloutState:
        path = self.root / _STATE_FILE
        try:
            return RolloutState.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            return RolloutState()
        except (ValidationError, ValueError):
            # A corrupt state file must not stop the gateway: start from the config's models.
            bad = path.with_suffix(".corrupt")
            with contextlib.suppress(OSError):
                path.replace(bad)
            return RolloutState()

    def save(self) -> None:
        """Write ``state.json`` atomically."""
        data = self.state.model_dump_json(indent=2).encode()
        fd, tmp = tempfile.mkstemp(prefix=".state-", dir=self.root)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.root / _STATE_FILE)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def release_dir(self, name: str, entry: DesiredModel) -> Path:
        """Where release ``entry`` of model ``name`` lives (whether or not it exists)."""
        return self.root / name / f"{entry.version}-{entry.sha256[:12]}"

    def cached(self, name: str, entry: DesiredModel) -> Path | None:
        """The release directory if it holds a complete release (not yet verified)."""
        d = self.release_dir(name, entry)
        if (d / MANIFEST_FILE).is_file() and any(d.glob("*.onnx")):
            return d
        return None

    def put(
        self,
        name: str,
        entry: DesiredModel,
        *,
        manifest: bytes,
        onnx_file: str,
        onnx: bytes,
        signature: ModelSignature | None,
    ) -> Path:
        """Write a downloaded release into its directory (atomically); return the path."""
        final = self.release_dir(name, entry)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".incoming-", dir=final.parent))
        try:
            (tmp / onnx_file).write_bytes(onnx)
            (tmp / MANIFEST_FILE).write_bytes(manifest)
            if signature is not None:
                write_signature(signature, tmp)
            if final.exists():
                shutil.rmtree(final)
            tmp.rename(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    def relative(self, path: Path) -> str:
        """``path`` relative to the store root (as stored in ``state.json``)."""
        return str(Path(path).relative_to(self.root))

    def prune(self, name: str) -> None:
        """Delete old release directories of ``name`` (keeps the active one and the
        :data:`_KEEP_PER_NAME` newest others, e.g. for a quick rollback)."""
        base = self.root / name
        if not base.is_dir():
            return
        active = self.state.active.get(name)
        keep = {self.root / active.dir} if active is not None else set()
        others = sorted(
            (d for d in base.iterdir() if d.is_dir() and d not in keep),
            key=lambda d: d.stat().st_mtime,
            reverse=True,
        )
        for d in others[_KEEP_PER_NAME:]:
            shutil.rmtree(d, ignore_errors=True)
