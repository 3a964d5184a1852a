#!/usr/bin/env python3
"""Write the fuzzing suite's seed corpora: fuzz/corpus/<target>/ (docs/RELIABILITY.md).

Usage: python3 scripts/make_fuzz_seeds.py [ROOT]   (ROOT defaults to the repository)

Every seed is a small valid input (so libFuzzer starts inside each reader's happy path, not at its first magic
check), built here with the standard library only and deterministically (a fixed seed), so rerunning it rewrites
the same bytes. Text seeds also come from the repository's own specs, datasets and test fixtures. The files are
committed; rerun this after changing a format and commit what changes.
"""

import gzip
import io
import json
import os
import random
import struct
import sys
import tarfile

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
OUT = os.path.join(ROOT, "fuzz", "corpus")
rng = random.Random(20261207)


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def head_lines(path, n, max_bytes=4000):
    out = b""
    with open(os.path.join(ROOT, path), "rb") as f:
        for i, line in enumerate(f):
            if i >= n or len(out) + len(line) > max_bytes:
                break
            out += line
    return out


def f32(values):
    return struct.pack("<%df" % len(values), *values)


def f16(values):
    return struct.pack("<%de" % len(values), *values)


def randn(n, scale=0.1):
    return [rng.gauss(0.0, scale) for _ in range(n)]


# MARK: safetensors

def safetensors(tensors, metadata=None):
    """tensors: list of (name, dtype, shape, bytes)."""
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


TINY = {"hidden": 16, "ff": 32, "heads": 2, "kv": 1, "vocab": 32, "layers": 1}
HEAD_DIM = TINY["hidden"] // TINY["heads"]


def hf_config(extra=None):
    c = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": TINY["hidden"],
        "intermediate_size": TINY["ff"], "num_hidden_layers": TINY["layers"], "num_attention_heads": TINY["heads"],
        "num_key_value_heads": TINY["kv"], "vocab_size": TINY["vocab"], "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "max_position_embeddings": 64, "tie_word_embeddings": True, "bos_token_id": 1, "eos_token_id": 2,
    }
    c.update(extra or {})
    return json.dumps(c, indent=1)


PROJECTIONS = {  # HF name -> (out, in)
    "self_attn.q_proj": (TINY["hidden"], TINY["hidden"]),
    "self_attn.k_proj": (TINY["kv"] * HEAD_DIM, TINY["hidden"]),
    "self_attn.v_proj": (TINY["kv"] * HEAD_DIM, TINY["hidden"]),
    "self_attn.o_proj": (TINY["hidden"], TINY["hidden"]),
    "mlp.gate_proj": (TINY["ff"], TINY["hidden"]),
    "mlp.up_proj": (TINY["ff"], TINY["hidden"]),
    "mlp.down_proj": (TINY["hidden"], TINY["ff"]),
}


def model_tensors(dtype="F32"):
    pack = f32 if dtype == "F32" else f16
    t = [("model.embed_tokens.weight", dtype, [TINY["vocab"], TINY["hidden"]], pack(randn(TINY["vocab"] * TINY["hidden"])))]
    for layer in range(TINY["layers"]):
        p = "model.layers.%d." % layer
        t.append((p + "input_layernorm.weight", dtype, [TINY["hidden"]], pack([1.0] * TINY["hidden"])))
        for name, (o, i) in PROJECTIONS.items():
            t.append((p + name + ".weight", dtype, [o, i], pack(randn(o * i))))
        t.append((p + "post_attention_layernorm.weight", dtype, [TINY["hidden"]], pack([1.0] * TINY["hidden"])))
    t.append(("model.norm.weight", dtype, [TINY["hidden"]], pack([1.0] * TINY["hidden"])))
    return t


put("safetensors", "model-f32.safetensors", safetensors(model_tensors("F32")))
put("safetensors", "model-f16.safetensors", safetensors(model_tensors("F16"), {"format": "pt"}))
put("safetensors", "mixed.safetensors", safetensors([
    ("a", "BF16", [3, 5], bytes(rng.randrange(256) for _ in range(30))),
    ("b", "I64", [2], struct.pack("<2q", 7, -1)), ("c", "U8", [4], b"\x00\x01\x02\x03"),
    ("empty", "F32", [0, 4], b""), ("scalar", "F64", [], struct.pack("<d", 2.5)),
]))


# MARK: bitsandbytes 4-bit (a prepared directory: config.json + model.safetensors)

NF4 = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
       -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
       0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0]


def bnb_weight(name, out_features, in_features, double_quant, blocksize=64):
    n = out_features * in_features
    blocks = (n + blocksize - 1) // blocksize
    packed = bytes(rng.randrange(256) for _ in range((n + 1) // 2))
    t = [(name, "U8", [(n + 1) // 2, 1], packed), (name + ".quant_map", "F32", [16], f32(NF4))]
    state = {"quant_type": "nf4", "blocksize": blocksize, "dtype": "float32", "shape": [out_features, in_features]}
    if double_quant:
        t.append((name + ".absmax", "U8", [blocks], bytes(rng.randrange(256) for _ in range(blocks))))
        t.append((name + ".nested_absmax", "F32", [(blocks + 255) // 256], f32([0.01] * ((blocks + 255) // 256))))
        t.append((name + ".nested_quant_map", "F32", [256], f32([(i - 128) / 128.0 for i in range(256)])))
        state.update({"nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 0.05})
    else:
        t.append((name + ".absmax", "F32", [blocks], f32([abs(x) + 0.01 for x in randn(blocks)])))
    js = json.dumps(state).encode()
    t.append((name + ".quant_state.bitsandbytes__nf4", "U8", [len(js)], js))
    return t


def prepared(double_quant):
    tensors = []
    for name, dtype, shape, raw in model_tensors("F32"):
        stem = name[len("model.layers.0."):-len(".weight")] if name.startswith("model.layers.") else None
        if stem in PROJECTIONS:
            tensors += bnb_weight(name, shape[0], shape[1], double_quant)
        else:
            tensors.append((name, dtype, shape, raw))
    quant = {"quantization_config": {"quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_quant_type": "nf4",
                                     "bnb_4bit_use_double_quant": double_quant, "bnb_4bit_compute_dtype": "float32"}}
    config = hf_config(quant).encode()
    return struct.pack("<H", len(config)) + config + safetensors(tensors, {"format": "pt"})


put("bnb-4bit", "prepared-dq", prepared(True))
put("bnb-4bit", "prepared-nodq", prepared(False))


# MARK: PEFT adapter ([u16 config length][adapter_config.json][adapter_model.safetensors]) and archives

def adapter(rank=2):
    config = json.dumps({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": 2 * rank, "lora_dropout": 0.0,
        "target_modules": sorted(n.split(".")[1] for n in PROJECTIONS), "bias": "none", "use_rslora": False,
        "base_model_name_or_path": "tiny", "fan_in_fan_out": False, "inference_mode": True,
    }, indent=2).encode()
    tensors = []
    for name, (o, i) in PROJECTIONS.items():
        p = "base_model.model.model.layers.0.%s." % name
        tensors.append((p + "lora_A.weight", "F32", [rank, i], f32(randn(rank * i))))
        tensors.append((p + "lora_B.weight", "F32", [o, rank], f32(randn(o * rank, 0.01))))
    return config, safetensors(tensors, {"format": "pt"})


config, weights = adapter()
put("peft-adapter", "rank2", struct.pack("<H", len(config)) + config + weights)
config1, weights1 = adapter(1)
put("peft-adapter", "rank1", struct.pack("<H", len(config1)) + config1 + weights1)


def tar_gz(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0)


manifest = json.dumps({"files": [{"path": "adapter_config.json"}, {"path": "adapter_model.safetensors"}]}).encode()
put("archive", "adapter.tar.gz", tar_gz([("adapter/adapter_config.json", config), ("adapter/adapter_model.safetensors", weights),
                                          ("adapter/adapter-manifest.json", manifest)]))
put("archive", "flat.tar.gz", tar_gz([("adapter_config.json", config1), ("adapter_model.safetensors", weights1)]))


# MARK: GGUF (a tiny LLaMA with a byte-level BPE vocabulary)

GGUF_TYPES = {"u8": 0, "i8": 1, "u16": 2, "i16": 3, "u32": 4, "i32": 5, "f32": 6, "bool": 7, "str": 8, "arr": 9,
              "u64": 10, "i64": 11, "f64": 12}


def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gvalue(kind, v):
    if kind == "str":
        return gstr(v)
    if kind.startswith("arr:"):
        inner = kind[4:]
        return struct.pack("<IQ", GGUF_TYPES[inner], len(v)) + b"".join(gvalue(inner, x) for x in v)
    fmt = {"u8": "B", "i8": "b", "u16": "H", "i16": "h", "u32": "I", "i32": "i", "f32": "f", "bool": "?",
           "u64": "Q", "i64": "q", "f64": "d"}[kind]
    return struct.pack("<" + fmt, v)


def gguf(kvs, tensors, alignment=32):
    """kvs: list of (key, kind, value); tensors: list of (name, ggml_type, dims (ggml order), bytes)."""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    for key, kind, value in kvs:
        type_id = GGUF_TYPES["arr"] if kind.startswith("arr:") else GGUF_TYPES[kind]
        out += gstr(key) + struct.pack("<I", type_id) + gvalue(kind, value)
    offset, data = 0, b""
    for name, ggml_type, dims, raw in tensors:
        out += gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", ggml_type, offset)
        pad = (-len(raw)) % alignment
        data += raw + b"\x00" * pad
        offset += len(raw) + pad
    out += b"\x00" * ((-len(out)) % alignment)
    return out + data


def byte_level_vocab():
    # GPT-2's bytes-to-unicode table, then a few merges; 32 tokens in all (TINY["vocab"]).
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    table, n = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + n)
            n += 1
    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    for ch in "Hello world!0123456789":
        c = table[ord(ch)]
        if c not in tokens:
            tokens.append(c)
    merges = ["H e", "l l", "ll o", "He llo"]
    for m in merges:
        tokens.append(m.replace(" ", ""))
    while len(tokens) < TINY["vocab"]:
        tokens.append("<extra_%d>" % len(tokens))
    return tokens[:TINY["vocab"]], merges


def gguf_model(pre, quantized):
    tokens, merges = byte_level_vocab()
    kvs = [
        ("general.architecture", "str", "llama"), ("general.name", "str", "fuzz-tiny"),
        ("general.alignment", "u32", 32),
        ("llama.block_count", "u32", TINY["layers"]), ("llama.context_length", "u32", 64),
        ("llama.embedding_length", "u32", TINY["hidden"]), ("llama.feed_forward_length", "u32", TINY["ff"]),
        ("llama.attention.head_count", "u32", TINY["heads"]), ("llama.attention.head_count_kv", "u32", TINY["kv"]),
        ("llama.rope.freq_base", "f32", 10000.0), ("llama.attention.layer_norm_rms_epsilon", "f32", 1e-5),
        ("llama.vocab_size", "u32", TINY["vocab"]),
        ("tokenizer.ggml.model", "str", "gpt2"), ("tokenizer.ggml.pre", "str", pre),
        ("tokenizer.ggml.tokens", "arr:str", tokens), ("tokenizer.ggml.token_type", "arr:i32", [3, 3, 3] + [1] * (len(tokens) - 3)),
        ("tokenizer.ggml.merges", "arr:str", merges),
        ("tokenizer.ggml.bos_token_id", "u32", 1), ("tokenizer.ggml.eos_token_id", "u32", 2),
        ("tokenizer.chat_template", "str",
         "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
         "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"),
    ]
    gguf_names = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
                  "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
                  "mlp.down_proj": "ffn_down"}
    tensors = [("token_embd.weight", 0, [TINY["hidden"], TINY["vocab"]], f32(randn(TINY["vocab"] * TINY["hidden"])))]
    for layer in range(TINY["layers"]):
        p = "blk.%d." % layer
        tensors.append((p + "attn_norm.weight", 0, [TINY["hidden"]], f32([1.0] * TINY["hidden"])))
        tensors.append((p + "ffn_norm.weight", 0, [TINY["hidden"]], f32([1.0] * TINY["hidden"])))
        for hf, (o, i) in PROJECTIONS.items():
            if quantized and i % 32 == 0:
                blocks = b""
                for _ in range(o * i // 32):  # Q8_0: f16 scale + 32 int8
                    blocks += struct.pack("<e", 0.01) + bytes(rng.randrange(256) for _ in range(32))
                tensors.append((p + gguf_names[hf] + ".weight", 8, [i, o], blocks))
            else:
                tensors.append((p + gguf_names[hf] + ".weight", 1, [i, o], f16(randn(o * i))))
    tensors.append(("output_norm.weight", 0, [TINY["hidden"]], f32([1.0] * TINY["hidden"])))
    return gguf(kvs, tensors)


put("gguf", "tiny-f16-smollm.gguf", gguf_model("smollm", False))
put("gguf", "tiny-q8_0-llama-bpe.gguf", gguf_model("llama-bpe", True))


# MARK: token files (docs: Sources/QLoRAFormats/Tokens/TokenFile.swift)

def token_file(sequences, packed, vocab, documents=None):
    ids = [t for s in sequences for t in s]
    labels = [1 if i % 3 else 0 for i in range(len(ids))]
    seq_offsets = [0]
    for s in sequences:
        seq_offsets.append(seq_offsets[-1] + len(s))
    doc_offsets = documents if documents is not None else seq_offsets

    def align(n):
        return (n + 63) // 64 * 64

    ids_off = 128
    labels_off = align(ids_off + 4 * len(ids))
    seq_off = align(labels_off + len(ids))
    doc_off = align(seq_off + 8 * len(seq_offsets))
    end = align(doc_off + 8 * len(doc_offsets))
    out = bytearray(end)
    out[0:8] = b"QLTOKENS"
    struct.pack_into("<IIQQQQQQQI", out, 8, 1, 1 if packed else 0, len(sequences), len(ids), len(doc_offsets) - 1,
                     ids_off, labels_off, seq_off, doc_off, vocab)
    struct.pack_into("<%dI" % len(ids), out, ids_off, *ids)
    out[labels_off:labels_off + len(ids)] = bytes(labels)
    struct.pack_into("<%dQ" % len(seq_offsets), out, seq_off, *seq_offsets)
    struct.pack_into("<%dQ" % len(doc_offsets), out, doc_off, *doc_offsets)
    return bytes(out)


put("token-file", "unpacked.tokens", token_file([[1, 5, 6, 2], [1, 7, 2], [1, 9, 10, 11, 2]], False, 32))
put("token-file", "packed.tokens", token_file([[1, 5, 2, 1, 6, 7, 2], [1, 9, 2, 0, 0]], True, 32, [0, 3, 7, 10, 12]))


# MARK: text formats from the repository

for name in ("tiny.yaml", "quickstart.yaml", "guanaco-65b.yaml"):
    put("spec", name, open(os.path.join(ROOT, "pipelines", name), "rb").read())
put("spec", "anchors.yaml", "name: anchored\ndataset:\n  files:\n    - {path: d.jsonl, format: alpaca}\n"
    "  eval_fraction: &f 0.1\n  max_rejected_fraction: *f\ntokenizer: {path: tok, max_seq_len: 128}\n"
    "model: {path: m.gguf}\nlora: {lora_rank: 4, lora_alpha: 8}\ntraining: {max_steps: 2, learning_rate: 0.0001}\n")

put("jsonl", "alpaca.jsonl", head_lines("datasets/gsm8k-alpaca.jsonl", 4))
put("jsonl", "chat.jsonl", head_lines("datasets/chatterbot-chat.jsonl", 6))
put("jsonl", "guanaco.jsonl", head_lines("datasets/chatterbot-guanaco.jsonl", 6))
put("jsonl", "edge.jsonl", '{"instruction":"a\\u0000b","output":"\\ud83d\\ude00"}\n\n{"prompt":"p","completion":1}\r\n'
    '{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]}\n[1,2]\n{"text":"### Human: a ### Assistant: b"}')
rows = [json.loads(l) for l in head_lines("datasets/gsm8k-alpaca.jsonl", 3).decode().splitlines()]
put("json", "alpaca.json", json.dumps(rows, indent=1))
put("json", "chat.json", json.dumps([json.loads(l) for l in head_lines("datasets/chatterbot-chat.jsonl", 4).decode().splitlines()]))
put("json", "edge.json", '[{"prompt":"a","completion":"b"}, 3, {"prompt":"\\u00e9","completion":""}, null]')
put("csv", "completion.csv", head_lines("datasets/chatterbot-completion.csv", 8))
put("csv", "quoted.csv", 'instruction,input,output\n"a, ""quoted"" one","","multi\nline"\nplain,,x\r\n"q",,"\xe2\x9c\x93"\n')
put("jsonl-gz", "alpaca.jsonl.gz", gzip.compress(head_lines("datasets/gsm8k-alpaca.jsonl", 4), mtime=0))
put("jsonl-gz", "multi-member.jsonl.gz", gzip.compress(b'{"prompt":"a","completion":"b"}\n', mtime=0) +
    gzip.compress(b'{"prompt":"c","completion":"d"}\n', mtime=0))

# The same small byte-level BPE tokenizer.json as FuzzTarget.smallTokenizerJSON.
SMALL_TOKENIZER = json.dumps({
    "version": "1.0", "added_tokens": [{"id": 0, "content": "<s>", "special": True}, {"id": 1, "content": "</s>", "special": True}],
    "normalizer": None, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
    "post_processor": None, "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
    "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None, "end_of_word_suffix": None,
              "fuse_unk": False, "byte_fallback": False,
              "vocab": {"<s>": 0, "</s>": 1, "H": 2, "i": 3, "e": 4, "l": 5, "o": 6, "!": 7, "\u0120": 8, "He": 9, "ll": 10,
                        "llo": 11, "Hello": 12},
              "merges": ["H e", "l l", "ll o", "He llo"]}})
tok_fixtures = os.path.join(ROOT, "Tests", "QLoRATokenizerTests", "Fixtures")
put("tokenizer-json", "small-byte-level.json", SMALL_TOKENIZER)
put("tokenizer-json", "llama3style.json", open(os.path.join(tok_fixtures, "llama3style", "tokenizer.json"), "rb").read())
put("tokenizer-config", "smollm2.json", open(os.path.join(tok_fixtures, "smollm2", "tokenizer_config.json"), "rb").read())
put("tokenizer-config", "minimal.json", '{"bos_token":"<s>","eos_token":{"content":"</s>","special":true},'
    '"chat_template":"{% for m in messages %}{{ m.role }}: {{ m.content }}\\n{% endfor %}"}')
for name in os.listdir(os.path.join(tok_fixtures, "chat")):
    if name.endswith(".jinja"):
        put("chat-template", name, open(os.path.join(tok_fixtures, "chat", name), "rb").read())
put("chat-template", "features.jinja",
    "{% set ns = namespace(n=0) %}{% macro m(x, y='d') %}[{{ x|upper }}{{ y }}]{% endmacro %}"
    "{% for msg in messages if msg.role != 'system' %}{{ loop.index }}{{ m(msg.content) }}"
    "{% set ns.n = ns.n + 1 %}{% if loop.last %}{{ ns.n }}{% endif %}{% endfor %}"
    "{{ messages|length }}{{ (messages|map(attribute='role')|list)|tojson }}{{ 'a b'.split()|join('-') }}"
    "{{ raise_exception('x') if false }}{{ range(3)|list }}{{ {'k': 1}.items()|list }}{{ '%d'|format(3) }}")

print("wrote", sum(len(files) for _, _, files in os.walk(OUT)), "seeds under", os.path.relpath(OUT, ROOT))
