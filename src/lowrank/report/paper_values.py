"""Numbers quoted from the LoRITa paper (seed 004_412d21979407f75a.txt), with their location.

Typed once here, from the source text, so the report can put them beside ours.
"""

SOURCE = "004_412d21979407f75a.txt (LoRITa)"

# Table 1: FCN test accuracy on MNIST for N = 1, 2, 3.
TABLE1_FCN = {
    6: {1: 0.983, 2: 0.982, 3: 0.977},
    8: {1: 0.983, 2: 0.982, 3: 0.977},
    10: {1: 0.983, 2: 0.981, 3: 0.977},
}

# Section 5.1, "Evaluation on FCNs": FCN-10 with GSVT reaches no accuracy drop at 15% retained
# singular values with LoRITa (N > 1) and needs about 22% without it (N = 1).
FCN10_GSVT_ZERO_DROP = {"lorita": 0.15, "baseline": 0.22}
