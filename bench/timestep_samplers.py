"""Adaptive timestep sampling against its baselines at small scale, equal wall-clock (the sampler's overhead counts).

Arms: uniform, IDDPM importance sampling, min-SNR-5 weighting, and the adaptive sampler (Kim et al., arXiv
2411.09998), all on the DiT recipe (DDPM, ε + learned variance); CIFAR-10 32×32 is the paper's own setting. Each arm
and seed trains from scratch for `--budget` seconds, then scores a proxy FID. Writes JSON to bench/results/.

    python bench/timestep_samplers.py --data cifar10 --data-dir ../shared/data/cifar10-jpeg --budget 120 --seeds 0 1
"""
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from race import race, race_parser

ARMS = [('uniform', 'dit', {}),
        ('IDDPM importance', 'dit', {'sampler': {'name': 'iddpm_importance'}}),
        ('min-SNR-5 weighting', 'dit', {'weighting': {'name': 'min_snr', 'gamma': 5.0}}),
        ('adaptive (Kim et al.)', 'adaptive', {})]

if __name__ == '__main__': race('timestep_samplers', ARMS, race_parser(__doc__, 'cifar10', 120.0).parse_args())
