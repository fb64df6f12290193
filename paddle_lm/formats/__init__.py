"""Foreign weight formats, one reader and one writer each: `bilm_tf` (ELMo's options.json + weights.hdf5, what
the released ELMo models and AllenNLP use) and its commands in `elmo_files`."""
