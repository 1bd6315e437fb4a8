"""FasterDiT's ablation ladder at small scale: every rung gets the same wall-clock training budget, then a proxy FID.

Rungs (fastdit_lab.methods.fasterdit.ABLATION_LADDER): DiT (DDPM, ε) → + rectified flow → + logit-normal timesteps →
+ velocity-direction loss → + data std modulated to 1 (= the `fasterdit` recipe). Each rung and seed trains DiT-T/4
from scratch for `--budget` seconds, then draws `--n` samples (no guidance, the same number of sampling steps for
every rung) and scores the proxy FID against the test split. Writes JSON to bench/results/.

    python bench/fasterdit_ladder.py --data fashion-mnist --data-dir ../shared/data/fashion-mnist --budget 75 --seeds 0 1
"""
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from race import race, race_parser
from fastdit_lab.methods.fasterdit import ABLATION_LADDER

if __name__ == '__main__': race('fasterdit_ladder', ABLATION_LADDER, race_parser(__doc__, 'fashion-mnist', 75.0).parse_args())
