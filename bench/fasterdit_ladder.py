"""FasterDiT's ablation ladder at small scale, with the class accuracy of the samples beside the FID.

Rungs (fastdit_lab.methods.fasterdit.ABLATION_LADDER): DiT (DDPM, ε) → + rectified flow → + logit-normal timesteps →
+ velocity-direction loss → + data std modulated to 1 (= the `fasterdit` recipe); and, to tell the ingredients
apart, the data-std modulation alone on SiT (`--extra`). Each rung and seed trains DiT-T/4 from scratch for the same
fixed number of steps (`--steps`; or the same wall-clock `--budget`), then draws `--n` samples (no guidance, the
same number of sampling steps for every rung) and scores the proxy FID and class accuracy against the test split.
Writes JSON to bench/results/.

    python bench/fasterdit_ladder.py --data fashion-mnist --data-dir ../shared/data/fashion-mnist --steps 600 --n 1000 --seeds 0 1
"""
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from race import race, race_parser
from fastdit_lab.methods.fasterdit import ABLATION_LADDER

EXTRA = [('SiT + data std only', 'sit', {'data_std': 1.0})]

if __name__ == '__main__':
    p = race_parser(__doc__, 'fashion-mnist', 75.0)
    p.add_argument('--extra', action='store_true', help='also run the one-ingredient rungs (data std alone on SiT)')
    a = p.parse_args()
    race('fasterdit_ladder', ABLATION_LADDER + (EXTRA if a.extra else []), a)
