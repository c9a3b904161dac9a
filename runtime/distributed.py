"""Scale-out through torchrun: relaunch under `torch.distributed.run`, then DDP in each process."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.distributed as dist


def wanted(nproc_per_node: int, launcher_flags: dict[str, str | None]) -> bool:
    """Whether this command should relaunch itself under torchrun: several processes here, or a
    run over several nodes (even with one process on this one)."""
    nodes = launcher_flags.get("nnodes")
    return not is_launched() and (nproc_per_node > 1 or (nodes is not None and str(nodes) not in ("1", "1:1")))


def launch(nproc_per_node: int, launcher_flags: dict[str, str], command: Sequence[str]) -> int:
    """Run `python -m nncompile.cli COMMAND…` in `nproc_per_node` processes under torchrun; a child that
    fails (or Ctrl-C) ends it with that child's exit status, after torchrun has reported it."""
    from torch.distributed import run
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    flags = [f"--nproc-per-node={nproc_per_node}"]
    flags += [f"--{name.replace('_', '-')}={value}" for name, value in launcher_flags.items() if value is not None]
    if not launcher_flags.get("nnodes") and not launcher_flags.get("rdzv_endpoint"):
        flags.append("--standalone")
    try:
        run.main([*flags, "-m", "nncompile.cli", *command])
    except ChildFailedError as error:  # torchrun already printed each failure
        return max(1, next(iter(error.failures.values())).exitcode)
    except KeyboardInterrupt:
        return 130
    except SignalException as signal_:  # torchrun turns SIGINT/SIGTERM into this, after stopping the children
        return 128 + int(signal_.sigval)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def is_launched() -> bool:
    """Whether this process was started by torchrun as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_process() -> bool:
    """Rank 0, or a process on its own: the one that writes the run directory."""
    return int(os.environ.get("RANK", "0")) == 0


def setup(device: torch.device) -> tuple[int, int, bool]:
    """Join the process group (NCCL on CUDA, else gloo); returns (rank, world size, whether this call
    created the group: only then does `teardown` destroy it, never a group its caller owns)."""
    if not is_launched():
        return 0, 1, False
    created = not dist.is_initialized()
    if created:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size(), created


def local_device(device: torch.device) -> torch.device:
    """On CUDA, each process of a node takes the GPU numbered by its local rank."""
    if device.type == "cuda" and is_launched():
        index = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return device


def unused_parameters(model: torch.nn.Module) -> bool:
    """True if some trainable parameter does not lead to the outputs: DDP must then be told
    (find_unused_parameters), or every rank waits for its gradient. Known for compiled specs, whose
    graph shows what the outputs are computed from; assumed False for other modules."""
    if not isinstance(model, torch.fx.GraphModule):  # (a hand-written module's `graph` may be anything)
        return False
    graph = model.graph
    reached, pending = set(), [node for node in graph.nodes if node.op == "output"]
    while pending:
        node = pending.pop()
        if node not in reached:
            reached.add(node)
            pending.extend(node.all_input_nodes)
    used = {node.target for node in reached if node.op in ("call_module", "get_attr")}
    return any(
        parameter.requires_grad and not any(name == target or name.startswith(f"{target}.") for target in used)
        for name, parameter in model.named_parameters()
    )


def all_sum(values: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over every process (itself when alone)."""
    if dist.is_initialized():
        dist.all_reduce(values)
    return values


def any_rank(flag: bool, device: torch.device) -> bool:
    """Whether any process raised `flag` (so that all stop at the same step)."""
    if not dist.is_initialized():
        return flag
    return bool(all_sum(torch.tensor([float(flag)], device=device)).item())


def teardown(created: bool) -> None:
    if created and dist.is_initialized():
        dist.destroy_process_group()
