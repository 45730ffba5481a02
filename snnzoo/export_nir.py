"""Export a model to NIR, the format neuromorphic tools and chips read.

    python -m snnzoo.export_nir snasnet_fmnist --pretrained --out snasnet_fmnist.nir
    python -m snnzoo.export_nir snasnet_fmnist --checkpoint runs/fmnist --out model.nir

Writes one HDF5 file (nir.write) holding the network as it runs in eval mode: BatchNorm
folded into the convolutions, LIF neurons with their exact constants for the time step --dt,
feedback edges as one-step delays. docs/nir.md says what each node holds and which tools read
it back. In Python: snnzoo.export_nir(model, path) and snnzoo.import_nir(path).
"""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

from snnzoo._options import add_debug_option, cli_errors, number_at_least
from snnzoo.nir_exchange import DEFAULT_DT, NIRExportError, export_nir
from snnzoo.validate import add_model_options, load_model


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m snnzoo.export_nir", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_options(parser)
    parser.add_argument("--out", type=Path, required=True, help="the .nir file to write")
    parser.add_argument("--dt", type=number_at_least(0.0, float, above=True), default=DEFAULT_DT,
                        help="seconds per timestep that the file's LIF time constants and "
                             f"delays assume (default: {DEFAULT_DT}, what SpikingJelly's and "
                             f"snnTorch's NIR importers assume)")
    add_debug_option(parser)
    args = parser.parse_args(argv)
    if args.out.is_dir():
        parser.error(f"--out {args.out} is a folder; give a file name, e.g. "
                     f"{args.out / (args.model + '.nir')}")
    if not args.out.parent.is_dir():
        parser.error(f"--out {args.out}: the folder {args.out.parent} does not exist; create it "
                     f"first or choose another path")
    with cli_errors(args.debug):
        model = load_model(args, parser.prog)
        try:
            export_nir(model, args.out, dt=args.dt)
        except NIRExportError as error:
            raise SystemExit(f"error: {args.model} cannot be exported to NIR: {error}") from None
        print(f"{args.model} -> {args.out} ({args.out.stat().st_size / 2**20:.1f} MiB, "
              f"dt = {args.dt:g} s, T = {model.timesteps})")
    return 0


class _CallableModule(types.ModuleType):
    """`import snnzoo.export_nir` makes snnzoo.export_nir this module, where the package had
    the function: calling the module calls the function, so both spellings work."""

    def __call__(self, *args, **kwargs):
        return export_nir(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

if __name__ == "__main__":
    sys.exit(main())
