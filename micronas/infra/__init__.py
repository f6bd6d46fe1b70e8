"""Infrastructure every layer may use: atomic files (``fileio``), the results cache
(``cache``), executors for indicator batches (``execution``), the one registry type behind
every named thing (``registry``), every default a user sees (``defaults``), rank statistics
(``stats``) and seeded torch initialisation (``torchinit``)."""
