from flat_jax.data.text import clean_text, tokenize


def test_lowercases_and_strips_special_characters():
  assert clean_text("Hello, WORLD!!  #$%  it's   great") == "hello , world ! ! it 's great"


def test_imdb_br_tags_and_entities_go():
  assert clean_text("Great film.<br /><br />Loved it &amp; more") == "great film loved it more"
  assert "br" not in tokenize(clean_text("one<br/>two<BR />three"))


def test_contractions_split_like_sst2():
  assert clean_text("didn't") == "did n't"
  assert clean_text("it 's a treat") == "it 's a treat"


def test_whitespace_collapses_and_empty_stays_empty():
  assert clean_text("  \t a \n  b  ") == "a b"
  assert clean_text("@@@ ###") == ""


def test_cleaning_a_clean_text_changes_nothing():
  # adjacent endings split in one pass: the training split (cleaned once at load) and the attacks
  # and IG (which clean the texts they are given again) read the same words
  assert clean_text("didn't's") == "did n't 's"
  for text in ("he'd've paid", "it wasn't's fault", "<br />A (great) film!", "we'll see"):
    assert clean_text(clean_text(text)) == clean_text(text)
