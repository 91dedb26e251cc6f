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
