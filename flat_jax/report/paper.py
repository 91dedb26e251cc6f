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
ATTACK_NAMES = {
  "textfooler": "Textfooler",
  "pwws": "PWWS",
  "gene": "Gene",
  "iga": "IGA",
  "pso": "PSO",
  "clare": "Clare",
  "bae": "BAE",
}
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
    ("lstm", "base"): [
      (5.05, 0.46, 0.68),
      (0.16, 0.53, 0.46),
      (45.00, 0.76, 0.81),
      (44.40, 0.62, 0.89),
    ],
    ("lstm", "adv"): [
      (12.36, 0.49, 0.68),
      (29.18, 0.60, 0.58),
      (48.39, 0.76, 0.82),
      (51.20, 0.51, 0.87),
    ],
    ("lstm", "flat"): [
      (17.76, 0.58, 0.75),
      (31.38, 0.66, 0.65),
      (54.16, 0.82, 0.86),
      (55.20, 0.68, 0.90),
    ],
    ("cnn", "base"): [
      (1.98, 0.46, 0.69),
      (3.72, 0.64, 0.56),
      (8.74, 0.55, 0.62),
      (45.20, 0.68, 0.91),
    ],
    ("cnn", "adv"): [
      (2.53, 0.52, 0.72),
      (16.04, 0.71, 0.65),
      (15.84, 0.55, 0.62),
      (52.60, 0.71, 0.92),
    ],
    ("cnn", "flat"): [
      (37.07, 0.70, 0.82),
      (32.62, 0.76, 0.75),
      (25.18, 0.61, 0.67),
      (62.20, 0.87, 0.96),
    ],
    ("bert", "base"): [
      (4.72, 0.35, 0.56),
      (3.84, 0.38, 0.33),
      (11.84, 0.39, 0.48),
      (37.60, 0.44, 0.87),
    ],
    ("bert", "adv"): [
      (5.60, 0.33, 0.56),
      (23.28, 0.34, 0.25),
      (30.67, 0.25, 0.40),
      (40.00, 0.52, 0.89),
    ],
    ("bert", "flat"): [
      (12.41, 0.44, 0.64),
      (28.35, 0.46, 0.38),
      (32.29, 0.45, 0.53),
      (55.00, 0.58, 0.90),
    ],
    ("deberta", "base"): [
      (5.22, 0.64, 0.76),
      (2.82, 0.71, 0.72),
      (12.12, 0.60, 0.63),
      (39.00, 0.69, 0.92),
    ],
    ("deberta", "adv"): [
      (7.96, 0.60, 0.73),
      (8.38, 0.81, 0.77),
      (25.70, 0.61, 0.62),
      (42.80, 0.69, 0.93),
    ],
    ("deberta", "flat"): [
      (11.59, 0.70, 0.79),
      (24.62, 0.83, 0.78),
      (31.62, 0.62, 0.65),
      (49.60, 0.73, 0.94),
    ],
  },
  "pwws": {
    ("lstm", "base"): [
      (11.64, 0.51, 0.71),
      (0.29, 0.55, 0.48),
      (54.53, 0.82, 0.86),
      (54.40, 0.66, 0.90),
    ],
    ("lstm", "adv"): [
      (18.73, 0.57, 0.74),
      (23.68, 0.63, 0.61),
      (61.17, 0.84, 0.88),
      (64.20, 0.61, 0.88),
    ],
    ("lstm", "flat"): [
      (19.66, 0.60, 0.75),
      (25.00, 0.69, 0.67),
      (62.41, 0.85, 0.89),
      (67.80, 0.79, 0.94),
    ],
    ("cnn", "base"): [
      (8.29, 0.53, 0.72),
      (4.36, 0.72, 0.59),
      (18.86, 0.57, 0.64),
      (54.20, 0.71, 0.91),
    ],
    ("cnn", "adv"): [
      (12.63, 0.57, 0.73),
      (20.64, 0.72, 0.68),
      (33.21, 0.56, 0.63),
      (63.00, 0.76, 0.92),
    ],
    ("cnn", "flat"): [
      (14.83, 0.58, 0.74),
      (20.70, 0.73, 0.69),
      (71.37, 0.91, 0.93),
      (65.60, 0.77, 0.93),
    ],
    ("bert", "base"): [
      (11.70, 0.37, 0.57),
      (7.08, 0.36, 0.32),
      (32.34, 0.28, 0.40),
      (51.60, 0.52, 0.87),
    ],
    ("bert", "adv"): [
      (14.44, 0.37, 0.58),
      (18.32, 0.33, 0.29),
      (33.38, 0.29, 0.40),
      (65.20, 0.45, 0.86),
    ],
    ("bert", "flat"): [
      (14.61, 0.44, 0.64),
      (25.08, 0.41, 0.36),
      (49.16, 0.30, 0.42),
      (68.20, 0.64, 0.90),
    ],
    ("deberta", "base"): [
      (14.17, 0.72, 0.81),
      (7.04, 0.82, 0.80),
      (31.30, 0.65, 0.71),
      (52.80, 0.73, 0.94),
    ],
    ("deberta", "adv"): [
      (15.16, 0.65, 0.76),
      (18.66, 0.81, 0.78),
      (53.02, 0.65, 0.70),
      (63.60, 0.64, 0.91),
    ],
    ("deberta", "flat"): [
      (23.23, 0.75, 0.83),
      (26.58, 0.84, 0.81),
      (55.14, 0.67, 0.72),
      (66.40, 0.80, 0.95),
    ],
  },
}
TABLE3 = {
  (attack, model, mode): dict(zip(DATASETS, cells))
  for attack, rows in _T3_ROWS.items()
  for (model, mode), cells in rows.items()
}

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
TABLE5 = {
  (0.1, 0.001): (84.79, 17.76),
  (0.1, 0.0): (83.96, 9.99),
  (0.0, 0.001): (84.34, 8.18),
  (0.0, 0.0): (84.40, 8.35),
}
