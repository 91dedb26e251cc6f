"""The paper's own figures (Chen & Ji, AAAI 2022), for the rows our tables put them beside.

Keys: model in lstm|cnn|bert|deberta, mode in base|adv|flat, attack = the training attack of adv and
flat models (None for base), dataset in sst2|imdb|agnews|trec.
"""
from __future__ import annotations

DATASETS = ("sst2", "imdb", "agnews", "trec")
MODELS = ("lstm", "cnn", "bert", "deberta")
DATASET_NAMES = {"sst2": "SST2", "imdb": "IMDB", "agnews": "AG", "trec": "TREC"}
MODEL_NAMES = {"lstm": "LSTM", "cnn": "CNN", "bert": "BERT", "deberta": "DeBERTa"}
# base and adv as the paper writes them; pgd and freelb are not in the paper (no figure beside them)
MODE_NAMES = {"base": "base", "adv": "adv", "flat": "FLAT", "pgd": "PGD", "freelb": "FreeLB"}
ATTACK_NAMES = {"textfooler": "Textfooler", "pwws": "PWWS", "gene": "Gene", "iga": "IGA",
                "pso": "PSO", "clare": "Clare", "bae": "BAE"}
TRANSFER_ATTACKS = ("pwws", "gene", "iga", "pso", "clare", "bae")


def _by_dataset(*values):
  return dict(zip(DATASETS, values))


# Table 2: standard test accuracy (%).
TABLE2 = {
    ("lstm", "base", None): _by_dataset(84.40, 88.03, 91.08, 90.80),
    ("lstm", "adv", "textfooler"): _by_dataset(82.32, 88.79, 90.29, 87.60),
    ("lstm", "adv", "pwws"): _by_dataset(82.59, 88.37, 91.16, 89.60),
    ("lstm", "flat", "textfooler"): _by_dataset(84.79, 89.17, 91.00, 91.00),
    ("lstm", "flat", "pwws"): _by_dataset(83.69, 88.52, 91.37, 91.20),
    ("cnn", "base", None): _by_dataset(84.18, 88.63, 91.32, 91.20),
    ("cnn", "adv", "textfooler"): _by_dataset(82.15, 88.81, 90.99, 89.20),
    ("cnn", "adv", "pwws"): _by_dataset(83.42, 88.89, 91.30, 90.00),
    ("cnn", "flat", "textfooler"): _by_dataset(83.09, 88.89, 91.64, 89.20),
    ("cnn", "flat", "pwws"): _by_dataset(83.31, 88.99, 91.03, 89.20),
    ("bert", "base", None): _by_dataset(91.32, 91.71, 93.59, 97.40),
    ("bert", "adv", "textfooler"): _by_dataset(91.38, 92.50, 90.30, 96.00),
    ("bert", "adv", "pwws"): _by_dataset(90.88, 93.14, 93.38, 95.20),
    ("bert", "flat", "textfooler"): _by_dataset(91.54, 92.78, 94.07, 96.20),
    ("bert", "flat", "pwws"): _by_dataset(91.05, 93.11, 93.09, 96.60),
    ("deberta", "base", None): _by_dataset(94.18, 93.80, 93.62, 96.40),
    ("deberta", "adv", "textfooler"): _by_dataset(94.40, 92.86, 92.84, 95.60),
    ("deberta", "adv", "pwws"): _by_dataset(94.78, 94.17, 92.96, 96.40),
    ("deberta", "flat", "textfooler"): _by_dataset(94.29, 94.29, 94.29, 96.40),
    ("deberta", "flat", "pwws"): _by_dataset(94.12, 94.26, 93.82, 96.40),
}

# Table 3: (after-attack accuracy %, Kendall's tau, top-5 intersection) under the attack the adv and
# FLAT models were trained with; base models attacked with the same recipe. Keyed (attack, model, mode).
_T3_ROWS = {
    "textfooler": {
        ("lstm", "base"): [(5.05, .46, .68), (0.16, .53, .46), (45.00, .76, .81), (44.40, .62, .89)],
        ("lstm", "adv"): [(12.36, .49, .68), (29.18, .60, .58), (48.39, .76, .82), (51.20, .51, .87)],
        ("lstm", "flat"): [(17.76, .58, .75), (31.38, .66, .65), (54.16, .82, .86), (55.20, .68, .90)],
        ("cnn", "base"): [(1.98, .46, .69), (3.72, .64, .56), (8.74, .55, .62), (45.20, .68, .91)],
        ("cnn", "adv"): [(2.53, .52, .72), (16.04, .71, .65), (15.84, .55, .62), (52.60, .71, .92)],
        ("cnn", "flat"): [(37.07, .70, .82), (32.62, .76, .75), (25.18, .61, .67), (62.20, .87, .96)],
        ("bert", "base"): [(4.72, .35, .56), (3.84, .38, .33), (11.84, .39, .48), (37.60, .44, .87)],
        ("bert", "adv"): [(5.60, .33, .56), (23.28, .34, .25), (30.67, .25, .40), (40.00, .52, .89)],
        ("bert", "flat"): [(12.41, .44, .64), (28.35, .46, .38), (32.29, .45, .53), (55.00, .58, .90)],
        ("deberta", "base"): [(5.22, .64, .76), (2.82, .71, .72), (12.12, .60, .63), (39.00, .69, .92)],
        ("deberta", "adv"): [(7.96, .60, .73), (8.38, .81, .77), (25.70, .61, .62), (42.80, .69, .93)],
        ("deberta", "flat"): [(11.59, .70, .79), (24.62, .83, .78), (31.62, .62, .65), (49.60, .73, .94)],
    },
    "pwws": {
        ("lstm", "base"): [(11.64, .51, .71), (0.29, .55, .48), (54.53, .82, .86), (54.40, .66, .90)],
        ("lstm", "adv"): [(18.73, .57, .74), (23.68, .63, .61), (61.17, .84, .88), (64.20, .61, .88)],
        ("lstm", "flat"): [(19.66, .60, .75), (25.00, .69, .67), (62.41, .85, .89), (67.80, .79, .94)],
        ("cnn", "base"): [(8.29, .53, .72), (4.36, .72, .59), (18.86, .57, .64), (54.20, .71, .91)],
        ("cnn", "adv"): [(12.63, .57, .73), (20.64, .72, .68), (33.21, .56, .63), (63.00, .76, .92)],
        ("cnn", "flat"): [(14.83, .58, .74), (20.70, .73, .69), (71.37, .91, .93), (65.60, .77, .93)],
        ("bert", "base"): [(11.70, .37, .57), (7.08, .36, .32), (32.34, .28, .40), (51.60, .52, .87)],
        ("bert", "adv"): [(14.44, .37, .58), (18.32, .33, .29), (33.38, .29, .40), (65.20, .45, .86)],
        ("bert", "flat"): [(14.61, .44, .64), (25.08, .41, .36), (49.16, .30, .42), (68.20, .64, .90)],
        ("deberta", "base"): [(14.17, .72, .81), (7.04, .82, .80), (31.30, .65, .71), (52.80, .73, .94)],
        ("deberta", "adv"): [(15.16, .65, .76), (18.66, .81, .78), (53.02, .65, .70), (63.60, .64, .91)],
        ("deberta", "flat"): [(23.23, .75, .83), (26.58, .84, .81), (55.14, .67, .72), (66.40, .80, .95)],
    },
}
TABLE3 = {(attack, model, mode): dict(zip(DATASETS, cells))
          for attack, rows in _T3_ROWS.items() for (model, mode), cells in rows.items()}

# Table 4: after-attack accuracy (%) on SST-2 of models trained with Textfooler, unseen attacks.
TABLE4 = {
    ("lstm", "base"): dict(zip(TRANSFER_ATTACKS, (11.64, 20.26, 9.83, 5.88, 3.02, 36.52))),
    ("lstm", "adv"): dict(zip(TRANSFER_ATTACKS, (15.38, 25.65, 17.02, 5.60, 3.90, 36.35))),
    ("lstm", "flat"): dict(zip(TRANSFER_ATTACKS, (20.48, 33.44, 24.22, 6.53, 5.55, 39.87))),
    ("cnn", "base"): dict(zip(TRANSFER_ATTACKS, (8.29, 20.32, 7.85, 5.60, 1.48, 37.12))),
    ("cnn", "adv"): dict(zip(TRANSFER_ATTACKS, (8.68, 16.42, 6.26, 5.60, 1.04, 35.48))),
    ("cnn", "flat"): dict(zip(TRANSFER_ATTACKS, (42.56, 55.02, 46.35, 10.38, 17.57, 48.38))),
    ("bert", "base"): dict(zip(TRANSFER_ATTACKS, (11.70, 32.24, 9.72, 6.26, 0.86, 35.31))),
    ("bert", "adv"): dict(zip(TRANSFER_ATTACKS, (13.01, 34.49, 10.87, 6.64, 1.04, 36.74))),
    ("bert", "flat"): dict(zip(TRANSFER_ATTACKS, (15.93, 35.31, 15.93, 9.50, 5.29, 37.56))),
    ("deberta", "base"): dict(zip(TRANSFER_ATTACKS, (14.17, 37.12, 12.19, 6.75, 0.55, 38.61))),
    ("deberta", "adv"): dict(zip(TRANSFER_ATTACKS, (17.52, 37.18, 12.85, 7.96, 1.07, 40.14))),
    ("deberta", "flat"): dict(zip(TRANSFER_ATTACKS, (21.80, 48.16, 28.17, 13.01, 1.37, 44.54))),
}

# Table 5: LSTM-FLAT on SST-2 trained with Textfooler, (standard accuracy, after-attack accuracy).
TABLE5 = {(0.1, 0.001): (84.79, 17.76), (0.1, 0.0): (83.96, 9.99), (0.0, 0.001): (84.34, 8.18),
          (0.0, 0.0): (84.40, 8.35)}
