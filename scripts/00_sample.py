"""Materialise the embedded sample (scikit-learn's handwritten digits) as a Kaggle folder."""
import argparse

from foldstack.sample import make_digits

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", default="input/digits")
    out = make_digits(p.parse_args().out)
    print(f"wrote the digits sample -> {out}")
