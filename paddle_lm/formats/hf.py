"""Hugging Face BERT / GPT-2 folders both ways: ``config.json`` + ``model.safetensors`` (or its shards) + the
tokenizer files, as transformers' ``save_pretrained`` writes them.

In: ``run_pretrain.py --init_from_pretrained DIR`` (and ``generate`` / ``fill-mask``) recognise an HF folder by
its weight names (`is_hf_folder`), build the model from its config.json (`model_config`: every field honoured or
refused by name) and load the weights renamed by paddlenlp's own mappings (``BertForMaskedLM`` /
``GPTForCausalLM._get_name_mappings``), plus `_BERT_HEAD` for BERT's masked-LM head, which paddlenlp does not
map. Out: `export_hf` writes a folder that transformers' ``AutoModelForMaskedLM`` / ``AutoModelForCausalLM`` and
``AutoTokenizer`` load offline with nothing missing or unexpected.

One rule decides which config fields are honoured, for HF and paddlenlp folders alike (`check_fields`): read the
ModelConfig from the folder's config, write the config back from that ModelConfig, and compare field by field;
a field whose value does not come back (an unsupported activation, a relative position embedding, untied output
embeddings, a field paddle-lm does not know) is refused with one line naming it. Only fields that cannot change
what the model computes (names, token ids, generation defaults, ...: `METADATA`) are left out of the comparison.
"""

from __future__ import annotations

import json
import os

import numpy as np

from paddle_lm.config import ModelConfig
from paddle_lm.errors import UserError
from paddle_lm.fsio import read_json

#: transformers architectures written by `export_hf`
ARCHITECTURES = {"bert": "BertForMaskedLM", "gpt2": "GPT2LMHeadModel"}
#: HF activation names -> ModelConfig.hidden_act (``gelu_fast`` / ``gelu_pytorch_tanh`` compute ``gelu_new``)
ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_new", "gelu_fast": "gelu_new", "gelu_pytorch_tanh": "gelu_new",
               "relu": "relu", "silu": "silu", "swish": "silu", "tanh": "tanh"}
#: config fields that do not change what the masked / causal LM computes (names, ids, defaults for other tasks)
METADATA = frozenset({
    "architectures", "model_type", "transformers_version", "paddlenlp_version", "torch_dtype", "dtype",
    "_name_or_path", "name_or_path", "initializer_range", "pad_token_id", "bos_token_id", "eos_token_id",
    "sep_token_id", "cls_token_id", "mask_token_id", "unk_token_id", "eol_token_id", "decoder_start_token_id",
    "use_cache", "gradient_checkpointing", "classifier_dropout", "id2label", "label2id", "num_labels",
    "problem_type", "finetuning_task", "tokenizer_class", "prefix", "task_specific_params", "return_dict",
    "output_hidden_states", "output_attentions", "torchscript", "chunk_size_feed_forward", "n_ctx",
    "summary_type", "summary_use_proj", "summary_activation", "summary_proj_to_labels", "summary_first_dropout",
    "directionality", "pooler_fc_size", "pooler_num_attention_heads", "pooler_num_fc_layers", "pooler_size_per_head",
    "pooler_type", "max_length", "min_length", "do_sample", "early_stopping", "num_beams", "num_beam_groups",
    "diversity_penalty", "temperature", "top_k", "top_p", "typical_p", "repetition_penalty", "length_penalty",
    "no_repeat_ngram_size", "encoder_no_repeat_ngram_size", "bad_words_ids", "num_return_sequences",
    "output_scores", "return_dict_in_generate", "forced_bos_token_id", "forced_eos_token_id",
    "remove_invalid_values", "exponential_decay_length_penalty", "suppress_tokens", "begin_suppress_tokens",
    "num_choices", "use_flash_attention", "recompute", "recompute_granularity", "recompute_use_reentrant",
    "use_fused_linear", "use_fused_dropout_add", "use_fast_layer_norm", "fused_softmax_with_triangular",
    "seq_length", "quantization_config", "_attn_implementation_autoset", "attn_implementation",
})
#: BERT's masked-LM head: (HF name, paddlenlp name, action); paddlenlp 2.8.1 maps the encoder only
_BERT_HEAD = (
    ("cls.predictions.transform.dense.weight", "cls.predictions.transform.weight", "transpose"),
    ("cls.predictions.transform.dense.bias", "cls.predictions.transform.bias", None),
    ("cls.predictions.transform.LayerNorm.weight", "cls.predictions.layer_norm.weight", None),
    ("cls.predictions.transform.LayerNorm.bias", "cls.predictions.layer_norm.bias", None),
    ("cls.predictions.bias", "cls.predictions.decoder_bias", None),
)
#: paddlenlp names that are the same tensor as another (tied), filled from it: tied name -> source name
_TIED = {"bert": {"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
                  "cls.predictions.decoder.bias": "cls.predictions.decoder_bias"},
         "gpt2": {"lm_head.weight": "gpt.embeddings.word_embeddings.weight"}}
#: HF names that are tied copies (must equal their source) or fixed buffers, never weights of their own
_HF_TIED = {"bert": {"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
                     "cls.predictions.decoder.bias": "cls.predictions.bias"},
            "gpt2": {"lm_head.weight": "transformer.wte.weight"}}
_HF_BUFFERS = (".attn.bias", ".attn.masked_bias", "embeddings.position_ids")
#: in an HF BERT checkpoint but not part of a masked LM: the pooler and the next-sentence head (BertForPreTraining)
_HF_UNUSED = ("bert.pooler.", "cls.seq_relationship.")


# ------------------------------------------------------------------------------------------------ detection
def is_hf_folder(directory: str, flag: str = "--init_from_pretrained") -> bool:
    """Does `directory` hold weights under Hugging Face's names (``...LayerNorm.weight``, ``...attn.c_attn...``,
    ``wte.weight``)? paddlenlp folders use paddlenlp's (``layer_norm``, ``self_attn.q_proj``)."""
    from paddle_lm.weights import folder_weight_names

    return any(n.endswith(("LayerNorm.weight", "wte.weight")) or ".c_attn." in n
               for n in folder_weight_names(directory, flag))


def read_config(directory: str, flag: str = "--init_from_pretrained") -> dict:
    raw = read_json(os.path.join(directory, "config.json"), f"{flag} {directory!r}: config.json")
    if not isinstance(raw, dict):
        raise UserError(f"{flag} {directory!r}: config.json is not a JSON object")
    return raw


def architecture(raw: dict) -> str:
    """config.json's architectures and model_type, as one string ('' when it names neither)."""
    return (" ".join(str(a) for a in raw.get("architectures") or []) + " " + str(raw.get("model_type", ""))).strip()


def found_model(raw: dict) -> str | None:
    """'bert', 'gpt2' or None, from config.json's architectures and model_type."""
    arch = architecture(raw).lower()
    return "bert" if "bert" in arch else "gpt2" if "gpt" in arch else None


# ------------------------------------------------------------------------------------------------- configs
def _hf_read(raw: dict, model: str) -> dict:
    """ModelConfig fields from an HF config.json, with transformers' defaults for absent optional fields."""
    if model == "bert":
        need = {"vocab_size": "vocab_size", "hidden_size": "hidden_size", "num_layers": "num_hidden_layers",
                "num_attention_heads": "num_attention_heads"}
        fields = {ours: raw.get(theirs) for ours, theirs in need.items()}
        fields.update(intermediate_size=raw.get("intermediate_size", 3072),
                      max_position_embeddings=raw.get("max_position_embeddings", 512),
                      dropout=raw.get("hidden_dropout_prob", 0.1), hidden_act=raw.get("hidden_act", "gelu"),
                      layer_norm_eps=raw.get("layer_norm_eps", 1e-12), type_vocab_size=raw.get("type_vocab_size", 2))
    else:
        need = {"vocab_size": "vocab_size", "hidden_size": "n_embd", "num_layers": "n_layer",
                "num_attention_heads": "n_head"}
        fields = {ours: raw.get(theirs) for ours, theirs in need.items()}
        hidden = raw.get("n_embd")
        inner = raw.get("n_inner")
        fields.update(intermediate_size=inner if inner is not None else (4 * hidden if isinstance(hidden, int) else None),
                      max_position_embeddings=raw.get("n_positions", 1024), dropout=raw.get("resid_pdrop", 0.1),
                      hidden_act=raw.get("activation_function", "gelu_new"),
                      layer_norm_eps=raw.get("layer_norm_epsilon", 1e-5))
    missing = [need[k] for k in need if fields[k] is None]
    if missing:
        raise UserError(f"config.json lacks {', '.join(missing)}")
    fields["hidden_act"] = ACTIVATIONS.get(fields["hidden_act"], fields["hidden_act"])
    return fields


def hf_config(cfg: ModelConfig, token_ids: dict | None = None) -> dict:
    """The transformers config.json of `cfg` (`token_ids`: pad / bos / eos ids for the tokenizer, if known)."""
    from paddle_lm.models.transformer_lm import FAMILY_EPS, activation_name

    eps = cfg.layer_norm_eps or FAMILY_EPS[cfg.model]
    act = activation_name(cfg)
    if cfg.model == "bert":
        out = {"architectures": [ARCHITECTURES["bert"]], "model_type": "bert", "vocab_size": cfg.vocab_size,
               "hidden_size": cfg.hidden_size, "num_hidden_layers": cfg.num_layers,
               "num_attention_heads": cfg.num_attention_heads, "intermediate_size": cfg.intermediate_size,
               "hidden_act": act, "hidden_dropout_prob": cfg.dropout,
               "attention_probs_dropout_prob": cfg.dropout, "max_position_embeddings": cfg.max_position_embeddings,
               "type_vocab_size": cfg.type_vocab_size, "layer_norm_eps": eps, "position_embedding_type": "absolute",
               "is_decoder": False, "add_cross_attention": False, "tie_word_embeddings": True}
    else:
        out = {"architectures": [ARCHITECTURES["gpt2"]], "model_type": "gpt2", "vocab_size": cfg.vocab_size,
               "n_embd": cfg.hidden_size, "n_layer": cfg.num_layers, "n_head": cfg.num_attention_heads,
               "n_inner": cfg.intermediate_size, "n_positions": cfg.max_position_embeddings,
               "activation_function": act, "resid_pdrop": cfg.dropout, "embd_pdrop": cfg.dropout,
               "attn_pdrop": cfg.dropout, "layer_norm_epsilon": eps, "scale_attn_weights": True,
               "scale_attn_by_inverse_layer_idx": False, "reorder_and_upcast_attn": False,
               "add_cross_attention": False, "tie_word_embeddings": True}
    out["torch_dtype"] = "float32"
    out.update(token_ids or {})
    return out


def _normal(key: str, value, raw: dict):
    """An HF value as `hf_config` writes it (null n_inner = 4 x n_embd, activation synonyms)."""
    if key == "n_inner" and value is None and isinstance(raw.get("n_embd"), int):
        return 4 * raw["n_embd"]
    if key in ("hidden_act", "activation_function"):
        return ACTIVATIONS.get(value, value)
    return value


def check_fields(raw: dict, rebuilt: dict, where: str, normal=lambda key, value, raw: value) -> None:
    """Refuse (one line naming it) the first field of `raw` (a folder's config.json) that `rebuilt` (the config
    written back from the ModelConfig read from it) does not reproduce; METADATA fields are not compared."""
    for key, value in raw.items():
        if key in METADATA:
            continue
        if key not in rebuilt:
            raise UserError(f"{where}: config.json field {key!r} is not one paddle-lm knows how to honour (it "
                            f"may change the model); remove it if it does not apply")
        theirs, ours = normal(key, value, raw), rebuilt[key]
        same = theirs == ours or (isinstance(theirs, (int, float)) and not isinstance(theirs, bool)
                                  and isinstance(ours, (int, float)) and np.isclose(theirs, ours, rtol=1e-9, atol=0))
        if not same:
            raise UserError(f"{where}: config.json {key} = {json.dumps(value)} is not supported (paddle-lm can "
                            f"build {key} = {json.dumps(ours)} only)")


def model_config(raw: dict, model: str, where: str) -> ModelConfig:
    """The ModelConfig of an HF folder's config.json, every field honoured or refused (`check_fields`)."""
    try:
        fields = _hf_read(raw, model)
    except UserError as e:
        raise UserError(f"{where}: {e}") from None
    if fields["hidden_act"] not in ACTIVATIONS.values():
        key = "hidden_act" if model == "bert" else "activation_function"
        raise UserError(f"{where}: config.json {key} = {json.dumps(raw.get(key))} is not supported (one of "
                        f"{', '.join(sorted(ACTIVATIONS))})")
    bad = [k for k, v in fields.items() if k != "hidden_act" and (isinstance(v, bool) or not isinstance(v, (int, float)))]
    if bad:
        raise UserError(f"{where}: config.json gives {bad[0]} as {json.dumps(fields[bad[0]])}, not a number")
    cfg = ModelConfig(model=model, **fields)
    check_fields(raw, hf_config(cfg), where, _normal)
    return cfg


# ------------------------------------------------------------------------------------------------- weights
def _mappings(cfg: ModelConfig) -> list:
    """paddlenlp's HF -> paddlenlp name mappings for `cfg`, BERT's head included (StateDictNameMapping list)."""
    from paddlenlp.transformers.conversion_utils import StateDictNameMapping

    from paddle_lm.models.transformer_lm import paddlenlp_class, paddlenlp_config

    maps = list(paddlenlp_class(cfg.model)._get_name_mappings(paddlenlp_config(cfg)))
    if cfg.model == "bert":
        maps += [StateDictNameMapping(src, dst, action) for src, dst, action in _BERT_HEAD]
    return maps


def _hf_names(state: dict, model: str) -> dict:
    """`state` under GPT2LMHeadModel's names (a bare GPT2Model file lacks the ``transformer.`` prefix), without
    the fixed attention-mask / position-id buffers older files carry."""
    out = {}
    for key, value in state.items():
        if any(key.endswith(b) for b in _HF_BUFFERS):
            continue
        if model == "gpt2" and not key.startswith(("transformer.", "lm_head.")):
            key = "transformer." + key
        out[key] = value
    return out


def paddle_state(hf_state: dict, cfg: ModelConfig, where: str) -> tuple[dict, list[str]]:
    """(paddlenlp state dict, optional keys) from an HF state dict: renamed, c_attn split, tied copies checked.
    Refuses HF weights that are missing or that no mapping takes, naming them."""
    work = _hf_names(hf_state, cfg.model)
    for tied, source in _HF_TIED[cfg.model].items():
        if tied in work:
            if source in work and not np.array_equal(work[tied], work[source]):
                raise UserError(f"{where}: {tied} differs from {source} (untied output embeddings); paddle-lm's "
                                f"{cfg.model} ties them")
            del work[tied]
    out, missing = {}, []
    for m in _mappings(cfg):
        if m.source_name not in work:
            if not m.source_name.startswith(_HF_UNUSED):
                missing.append(m.source_name)
            continue
        out[m.target_name] = np.asarray(m.run(work, m.source_name))
    if missing:
        raise UserError(f"{where}: the weights lack {missing[0]}" + (f" (and {len(missing) - 1} more)"
                                                                      if len(missing) > 1 else ""))
    extra = sorted(k for k in work if not k.startswith(_HF_UNUSED))
    if extra:
        raise UserError(f"{where}: weight {extra[0]} is not part of a {ARCHITECTURES[cfg.model]}"
                        + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""))
    for tied, source in _TIED[cfg.model].items():
        out[tied] = out[source]
    return out, [k for k in ("bert.pooler.dense.weight", "bert.pooler.dense.bias") if k not in out]


def hf_state(state: dict, cfg: ModelConfig) -> dict:
    """The HF state dict (numpy, contiguous float32) of a paddlenlp one: the inverse of `paddle_state`, without
    tied copies and BERT's pooler (a BertForMaskedLM has none)."""
    split: dict = {}
    out = {}
    for m in _mappings(cfg):
        if m.source_name.startswith(_HF_UNUSED):
            continue
        value = np.asarray(state[m.target_name], dtype=np.float32)
        if m.action == "split":
            split.setdefault(m.source_name, {})[m.index] = value
        else:
            out[m.source_name] = value.T if m.action == "transpose" else value
    for name, parts in split.items():  # q, k, v back into one c_attn
        out[name] = np.concatenate([parts[i] for i in range(3)], axis=-1)
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


# -------------------------------------------------------------------------------------------------- export
def check_hf_output(output: str, overwrite: bool) -> None:
    """What `export_hf` checks of --output before any work (also run by the CLI before Paddle loads)."""
    from paddle_lm.fsio import refuse_existing

    if os.path.lexists(output) and not os.path.isdir(output):
        raise UserError(f"--output {output!r} exists and is not a folder; export-hf writes a folder")
    refuse_existing(output, "--output", overwrite)


def write_tokenizer(tok_dir: str, out: str, cfg: ModelConfig) -> dict:
    """Copy the tokenizer's vocab files to `out` with a transformers ``tokenizer_config.json``; returns the
    token ids config.json names (pad for BERT, bos / eos for GPT-2)."""
    from paddle_lm.data.subword import (
        BERT_SPECIALS,
        CONFIG_FILE,
        GPT2_EOS,
        VOCAB_FILES,
        fast_tokenizer,
        read_tokenizer_config,
    )
    from paddle_lm.fsio import atomic_copy, atomic_write_json

    for name in VOCAB_FILES[cfg.model]:
        atomic_copy(os.path.join(tok_dir, name), os.path.join(out, name))
    fast = fast_tokenizer(tok_dir, cfg.model)
    if cfg.model == "bert":
        pad, unk, cls, sep, mask = BERT_SPECIALS
        config = {"tokenizer_class": "BertTokenizer",
                  "do_lower_case": bool(read_tokenizer_config(tok_dir).get("do_lower_case", True)),
                  "unk_token": unk, "sep_token": sep, "pad_token": pad, "cls_token": cls, "mask_token": mask}
        ids = {"pad_token_id": fast.token_to_id(pad)}
    else:
        config = {"tokenizer_class": "GPT2Tokenizer", "bos_token": GPT2_EOS, "eos_token": GPT2_EOS,
                  "unk_token": GPT2_EOS, "add_prefix_space": False}
        eos = fast.token_to_id(GPT2_EOS)
        ids = {"bos_token_id": eos, "eos_token_id": eos}
    config["model_max_length"] = cfg.max_position_embeddings
    atomic_write_json(os.path.join(out, CONFIG_FILE), config, indent=2)
    return ids


def export_hf(prefix: str, output: str, overwrite: bool = False, flag: str = "--init_from_ckpt") -> list[str]:
    """Write BERT / GPT-2 checkpoint `prefix` as a transformers folder `output` (config.json, model.safetensors
    with ``{"format": "pt"}`` metadata, the tokenizer); built under a temporary name and renamed into place.
    Returns the file names."""
    from paddle_lm.evaluation import load_subword_model
    from paddle_lm.fsio import built_dir

    check_hf_output(output, overwrite)
    model, _, tok_dir = load_subword_model(prefix, flag=flag)
    with built_dir(output) as tmp:
        write_model(model, tmp, write_tokenizer(tok_dir, tmp, model.cfg))
    return sorted(os.listdir(output))


def write_model(model, folder: str, token_ids: dict | None = None) -> None:
    """A `TransformerLM`'s config.json and model.safetensors (``{"format": "pt"}``) in transformers' layout into
    existing `folder` (`token_ids`: what `write_tokenizer` returned, if a tokenizer goes with it)."""
    from safetensors.numpy import save_file

    from paddle_lm.fsio import atomic_path, atomic_write_json

    tensors = hf_state({k: v.numpy() for k, v in model.net.state_dict().items()}, model.cfg)
    atomic_write_json(os.path.join(folder, "config.json"), hf_config(model.cfg, token_ids), indent=2)
    with atomic_path(os.path.join(folder, "model.safetensors")) as path:
        save_file(tensors, path, metadata={"format": "pt"})
