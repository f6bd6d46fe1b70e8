"""Infrastructure every layer may use: atomic files (``fileio``), the results cache
(``cache``), executors for indicator batches (``execution``), rank statistics (``stats``)
and seeded torch initialisation (``torchinit``)."""
