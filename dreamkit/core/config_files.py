"""A TrainConfig on disk: `config.json` beside every run, read back by `--config`, resume and
export. Written whole or not at all, with every local folder as a full path; read back with
one line for each way a file can be wrong (missing, a folder, unreadable, not JSON, an unknown
setting), naming the file and the fix."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from .errors import ConfigError

__all__ = ["with_absolute_paths", "save_config", "read_settings", "known_settings"]

FOLDERS = ("instance_dir", "instance_data_dir", "class_dir", "class_data_dir")  # in concepts


def with_absolute_paths(config):
    """The same settings with every local folder as a full path, so a saved config.json works
    from any folder (`--config run/config.json`) and names what the run read. A model id that
    is not a local folder stays as it is."""
    def full(p: str, local_only: bool = False) -> str:
        if not p or not isinstance(p, str) or Path(p).is_absolute():
            return p
        q = Path(p).expanduser()
        return str(q.resolve()) if (q.exists() or not local_only) else p
    concepts = [{k: full(v) if k in FOLDERS else v for k, v in c.items()}
                if isinstance(c, dict) else c for c in config.concepts]
    return dataclasses.replace(
        config, instance_dir=full(config.instance_dir), class_dir=full(config.class_dir),
        output_dir=full(config.output_dir), concepts=concepts,
        pretrained_model_name_or_path=full(config.pretrained_model_name_or_path, True),
        pretrained_vae_model_name_or_path=full(config.pretrained_vae_model_name_or_path, True))


def save_config(config, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(dataclasses.asdict(with_absolute_paths(config)), indent=2) + "\n")
    tmp.replace(path)  # atomic: a crash never leaves half a config
    return path


def read_settings(path) -> dict:
    """The settings a saved config.json holds, or ConfigError saying what is wrong with it."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError("config", str(path), "no such file; give the path of a saved "
                          "config.json") from None
    except IsADirectoryError:
        raise ConfigError("config", str(path), "is a folder; give its config.json") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError("config", str(path), f"cannot be read ({e}); give a saved "
                          f"config.json") from None
    except json.JSONDecodeError as e:
        raise ConfigError("config", str(path), f"is not valid JSON ({e.msg}, line "
                          f"{e.lineno}); fix or recreate it") from None
    if not isinstance(data, dict):
        raise ConfigError("config", str(path), "must hold a JSON object of settings")
    return data


def known_settings(data: dict, config_class) -> dict:
    """`data`, if every key is a setting of `config_class`; else ConfigError naming the first
    unknown one (a misspelled setting is never dropped silently)."""
    names = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(unknown[0], data[unknown[0]],
                          "is not a TrainConfig setting; check the spelling (see "
                          "`dreamkit train --help`)")
    return data
