"""hubkit.zoo.text: Hugging Face text encoders (BERT family) with upstream state-dict keys, and their tokenizers.

Importing this package registers the architectures with ``hubkit.hub.registry``; use them through
``hubkit.load("all-MiniLM-L6-v2", pretrained=True).encode(["a sentence", ...])``, or build a
``BertModel(BertConfig.from_json_file("config.json"))`` and load any BERT checkpoint by key.
"""

from hubkit.zoo.text.bert import BertConfig, BertModel, BertOutput, SentenceEncoder, all_minilm_l6_v2

__all__ = ["BertConfig", "BertModel", "BertOutput", "SentenceEncoder", "all_minilm_l6_v2"]
