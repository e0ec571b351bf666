"""Checkpoint files without torch: torch zip, legacy and tar files, safetensors and npz. No engine
imports, except in ``state`` (the bridge between engine Tensors and the arrays this package moves).

==================  ==================================================================================
module              job
==================  ==================================================================================
``formats``         ``load_checkpoint``, ``save_checkpoint``, ``load_object``, ``save_object``, sniffing
``state``           ``hubkit.save``, ``hubkit.load_state``, and the file side of ``hubkit.load``
``_torch_pickle``   the data-only pickle machine and its allowlist
``_torch_archive``  ``TorchArchive`` (storages -> arrays) and ``TensorData``
``_torch_zip``      torch's zip format: reader and writer
``_torch_legacy``   torch's pre-1.6 stream and pre-0.4 tar formats
``_safetensors``    safetensors read and write
``_npz``            npz read and write
``_zip``            checked zip records, 64-byte aligned writes, inflating on demand
``_filebuf``        bounds-checked random access to a file, mapped or copied
==================  ==================================================================================
"""
