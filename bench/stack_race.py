"""Stacked methods against their parts and the dense baseline: does FasterDiT + TREAD beat FasterDiT, TREAD and SiT?

Arms (DiT-T/4 made `--depth` blocks deep so that TREAD's route 2 → depth−4 spans several blocks): dense SiT, TREAD
(its EDM recipe), FasterDiT (flow, logit-normal, direction loss) and the `fasterdit-tread` combination. Each arm and
seed trains from scratch, then scores the proxy FID and class accuracy of its samples (`bench/race.py`). Use
`--steps N` on a loaded machine (every arm the same optimizer steps; the JSON records each arm's training seconds,
from which the steps an equal wall clock buys follow), `--budget S` on a quiet one. Writes JSON to bench/results/.

    python bench/stack_race.py --data fashion-mnist --data-dir ../shared/data/fashion-mnist --steps 150 --seeds 0 1 --threads 1
"""
from race import deeper, race, race_parser          # bench/ is on the path of a script run from it

if __name__ == '__main__':
    a = race_parser(__doc__, 'fashion-mnist', 120.0, depth=8).parse_args()
    margs = deeper(a)
    arms = [('dense (SiT)', 'sit', margs),
            ('TREAD 0.5, 2→depth−4 (EDM)', 'tread', margs),
            ('FasterDiT', 'fasterdit', margs),
            ('FasterDiT + TREAD', 'fasterdit-tread', margs)]
    race('stack_race', arms, a)
