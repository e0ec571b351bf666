"""`hubkit run`: the mpiexec command it builds, and the local launcher's variables and failure notice."""

import json
import sys

import pytest
from distjob import explain, hubkit_run

from hubkit.cli import main
from hubkit.distributed import launch

pytestmark = pytest.mark.distributed


def test_the_mpi_command_supervises_each_rank_and_keeps_survivors_alive(monkeypatch):
    monkeypatch.setattr(launch, "_flavor", lambda mpiexec: "mpich")
    cmd = launch.mpi_command(4, [sys.executable, "train.py", "--lr", "0.1"], hosts="a:2,b:2", mpiexec="mpiexec")
    assert cmd[:6] == ["mpiexec", "-disable-auto-cleanup", "-n", "4", "-hosts", "a:2,b:2"]
    assert cmd[6:8] == [sys.executable, str(launch._SUPERVISOR)]
    assert cmd[8:] == [sys.executable, "train.py", "--lr", "0.1"]
    monkeypatch.setattr(launch, "_flavor", lambda mpiexec: "openmpi")
    cmd = launch.mpi_command(2, ["prog"], hosts="a:2", mpiexec="mpirun")
    assert cmd[:5] == ["mpirun", "-n", "2", "--host", "a:2"]


def test_program_argv_runs_a_script_or_a_module():
    assert launch.program_argv("train.py", ["-x"]) == [sys.executable, "train.py", "-x"]
    assert launch.program_argv("pkg.train", [], module=True) == [sys.executable, "-m", "pkg.train"]


def test_cli_refuses_bad_arguments(capsys):
    assert main(["run", "--nproc", "0", "x.py"]) == 1
    assert "--nproc 0" in capsys.readouterr().err
    assert main(["run", "--nproc", "2", "--launcher", "local", "--hosts", "a,b", "x.py"]) == 1
    assert "--hosts needs the mpi launcher" in capsys.readouterr().err
    assert main(["run", "x.py"]) == 2  # --nproc is required


def test_local_launcher_sets_torchruns_variables_and_notifies_the_others_of_a_failure(tmp_path):
    result = hubkit_run("local_env.py", 2, tmp_path, launcher="local", timeout=60)
    assert result.returncode == 3, explain(result)
    assert "hubkit run: rank 1" in result.stderr and "exited with code 3" in result.stderr
    envs = [json.loads((tmp_path / f"env_{r}.json").read_text()) for r in range(2)]
    for r, env in enumerate(envs):
        assert env["RANK"] == env["LOCAL_RANK"] == str(r)
        assert env["WORLD_SIZE"] == env["LOCAL_WORLD_SIZE"] == "2"
        assert env["MASTER_ADDR"] == "127.0.0.1" and env["MASTER_PORT"] == envs[0]["MASTER_PORT"]
    assert (tmp_path / "notice_0").read_text() == "True"


def test_options_after_the_script_belong_to_the_script():
    from hubkit.cli import build_parser

    args = build_parser().parse_args(["run", "--nproc", "2", "train.py", "--lr", "1", "-m", "--nproc", "5"])
    assert (args.nproc, args.module, args.script) == (2, False, "train.py")
    assert args.args == ["--lr", "1", "-m", "--nproc", "5"]
    args = build_parser().parse_args(["run", "--nproc", "3", "-m", "pkg.train", "--epochs", "2"])
    assert (args.nproc, args.module, args.script, args.args) == (3, True, "pkg.train", ["--epochs", "2"])
