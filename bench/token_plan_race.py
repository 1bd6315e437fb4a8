"""Dense vs TREAD vs MaskDiT at small scale and equal wall-clock: which token plan buys the most quality per second.

All arms use the EDM objective (the setting both references train in) and the same DiT size; TREAD routes 50 % of the
tokens around blocks 2 … depth−4, MaskDiT masks 50 % before the encoder and adds its decoder and MAE term. The
default model is DiT-T/4 made 12 blocks deep (`--depth 12`), so the reference route 2 → 8 of DiT-B/2 applies
unchanged. Each arm and seed trains from scratch for `--budget` seconds, then scores a proxy FID. Writes JSON to
bench/results/.

    python bench/token_plan_race.py --data fashion-mnist --data-dir ../shared/data/fashion-mnist --budget 120 --seeds 0 1
"""
from race import deeper, race, race_parser          # bench/ is on the path of a script run from it

if __name__ == '__main__':
    a = race_parser(__doc__, 'fashion-mnist', 120.0, depth=12).parse_args()
    margs = deeper(a)
    arms = [('dense (EDM)', 'edm', margs),
            ('TREAD 0.5, 2→depth−4', 'tread', margs),
            ('MaskDiT 0.5 + MAE', 'maskdit', dict(margs, model=a.model.replace('DiT-', 'MaskDiT-')))]
    race('token_plan_race', arms, a)
