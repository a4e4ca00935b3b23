"""Small helpers every layer may use, one concept a module (import from the defining module):

- io:      atomic writes, content hashes (stable_hash, sha256_file), CSV reading with one-line errors
- timing:  warm-up, device-synchronised timing and medians of a piece of work
- tables:  the plain-text tables the stages print
- plots:   training curves
- seed:    random seeds and RNG state"""
