"""The data: the course's files (names.txt, shakespeare.txt), character vocabularies, the names dataset,
and text corpora for the GPTs."""
from .corpus import TextDataset, TokenCorpus, shakespeare_dataset, text_dataset
from .files import data_path
from .names import NamesDataset, build_contexts, load_words, names_dataset
from .vocab import CharVocab

__all__ = ["CharVocab", "NamesDataset", "TextDataset", "TokenCorpus", "build_contexts", "data_path", "load_words",
           "names_dataset", "shakespeare_dataset", "text_dataset"]
