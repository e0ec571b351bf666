"""Moving bytes: downloads, their verification, the cache and safe extraction. No engine, no numpy.

==================  ==================================================================================
module              job
==================  ==================================================================================
``download``        ``fetch``, ``fetch_many``, ``Resource``, ``copy_into``: sources, retries, commit
``verify``          the one "is this file what we expect" (``Expect``, ``verify_file``, ``hash_file``)
``cache``           the layout: ``home_dir``, ``files_dir``, sidecars, the one ``file_lock``, cache admin
``archive``         ``extract``: safe, atomic, bounded extraction; ``is_extracted``
``_http``           requests, redirects, retry policy, bounded waits, reading bodies as served
``_resume``         taking over a partial; judging a 200/206/416 answer to a Range request
``_writer``         the partial file: hashing thread, flush-behind, free-space check
``_progress``       tqdm bars, one per file or one for ``fetch_many``
==================  ==================================================================================
"""
