#!/usr/bin/env python3
"""A BERT-family encoder exported to ONNX, back in the Hugging Face layout that emb-encode reads.

    python scripts/onnx-to-safetensors.py MODEL.onnx OUT_DIR --tokenizer-from DIR \
        [--max-seq-length N] [--normalize] [--name NAME]

writes OUT_DIR/config.json (BertModel), model.safetensors (F32, Hugging Face's tensor names),
the tokenizer files copied from --tokenizer-from (the ONNX packages ship none; the MiniLM models
share BERT's uncased vocabulary), and sentence-transformers' modules.json, sentence_bert_config.json
and 1_Pooling/config.json (mean pooling; 2_Normalize when --normalize).

How the weights are found, whatever the exporter called them:
  - every linear layer is a MatMul whose output goes into an Add with a bias initialiser named
    "...encoder.layer.N.<sub>.bias": the weight is that MatMul's constant operand, transposed
    (ONNX's MatMul takes in x out, PyTorch stores out x in);
  - the embedding tables are the data operands of the Gather nodes, named after the table;
  - LayerNorms are LayerNormalization nodes (scale, bias, epsilon);
  - the number of heads is read from the shape of the query's Reshape at run time.
The constant operands are not read from the initialisers but computed by onnxruntime itself (they
are made outputs of the graph and the model is run once on a two-token input): a weight stored
quantised (int8 with a scale, dequantised by Cast and Mul nodes) comes out exactly as the graph
computes it, so the F32 checkpoint is the same function as the ONNX model. (A model quantised on
activations too, with MatMulInteger or QLinearMatMul, is not this case and is refused.)
Needs: numpy, onnx, onnxruntime, safetensors.
"""
import argparse, json, os, re, shutil, sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper
from safetensors.numpy import save_file

TOKENIZER_FILES = ["tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"]


def fail(msg):
    sys.exit(f"onnx-to-safetensors: {msg}")


def hf_name(name):
    """'model.0.auto_model.encoder.layer.1.output.dense.bias' -> 'encoder.layer.1.output.dense.bias'."""
    m = re.search(r"(embeddings\.|encoder\.layer\.)", name)
    return name[m.start():] if m else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("onnx")
    ap.add_argument("out")
    ap.add_argument("--tokenizer-from", required=True, help="a model directory with tokenizer.json (and vocab.txt)")
    ap.add_argument("--max-seq-length", type=int, default=256)
    ap.add_argument("--normalize", action="store_true", help="the sentence-transformers model ends with Normalize")
    ap.add_argument("--name", help="config.json's _name_or_path")
    a = ap.parse_args()

    model = onnx.load(a.onnx)
    g = model.graph
    if any(n.op_type in ("MatMulInteger", "QLinearMatMul", "DynamicQuantizeLinear") for n in g.node):
        fail("the model quantises activations (MatMulInteger/QLinearMatMul): no F32 checkpoint computes the same function")
    inits = {i.name for i in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)

    def constant(name):
        """True when the value depends on initialisers and constants only."""
        if name in inits:
            return True
        p = producer.get(name)
        if p is None:
            return False
        return p.op_type == "Constant" or all(constant(i) for i in p.input if i)

    wanted = {}        # HF name -> (graph value name, transpose?)
    eps = None
    query_reshape = None
    for n in g.node:
        if n.op_type == "MatMul" and constant(n.input[1]) and not constant(n.input[0]):
            adds = [c for c in consumers.get(n.output[0], []) if c.op_type == "Add"]
            bias = [i for c in adds for i in c.input if i in inits and (hf_name(i) or "").endswith(".bias")]
            if len(bias) != 1:
                fail(f"MatMul {n.name}: no bias initialiser after it (not a BERT linear layer)")
            b = hf_name(bias[0])
            wanted[b[:-len(".bias")] + ".weight"] = (n.input[1], True)
            wanted[b] = (bias[0], False)
            if b.endswith("attention.self.query.bias") and query_reshape is None:
                # The first Reshape downstream of the query's Add: (batch, length, heads, head size).
                frontier = [o for c in adds for o in c.output]
                for _ in range(4):
                    nxt = [c for o in frontier for c in consumers.get(o, [])]
                    r = [c for c in nxt if c.op_type == "Reshape"]
                    if r:
                        query_reshape = r[0].output[0]
                        break
                    frontier = [o for c in nxt for o in c.output]
        elif n.op_type == "Gather" and (hf_name(n.input[0]) or "").startswith("embeddings.") and constant(n.input[0]):
            wanted[hf_name(n.input[0])] = (n.input[0], False)
        elif n.op_type == "LayerNormalization":
            for i in n.input[1:3]:
                name = hf_name(i)
                if name is None:
                    fail(f"LayerNormalization {n.name}: parameter '{i}' has no Hugging Face name")
                wanted[name] = (i, False)
            e = [x.f for x in n.attribute if x.name == "epsilon"]
            eps = e[0] if e else 1e-5
    if query_reshape is None:
        fail("no Reshape after the first query projection: cannot tell the number of heads")

    # Run the graph once with every wanted value as an output.
    known = {o.name for o in g.output}
    for v in sorted({v for v, _ in wanted.values()} | {query_reshape}):
        if v not in known:
            g.output.append(helper.make_tensor_value_info(v, onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = {}
    for i in sess.get_inputs():
        if i.name == "input_ids":
            feed[i.name] = np.array([[101, 102]], dtype=np.int64)
        elif i.name in ("attention_mask", "token_type_ids"):
            feed[i.name] = np.array([[1, 1]] if i.name == "attention_mask" else [[0, 0]], dtype=np.int64)
        else:
            fail(f"unknown model input '{i.name}'")
    names = [o.name for o in sess.get_outputs()]
    values = dict(zip(names, sess.run(None, feed)))
    tensors = {}
    for hf, (v, transpose) in wanted.items():
        x = np.asarray(values[v], dtype=np.float32)
        tensors[hf] = np.ascontiguousarray(x.T if transpose else x)
    heads = int(values[query_reshape].shape[2])

    we = tensors["embeddings.word_embeddings.weight"]
    layers = 1 + max(int(re.match(r"encoder\.layer\.(\d+)\.", k).group(1)) for k in tensors if k.startswith("encoder."))
    hidden = we.shape[1]
    config = {
        "_name_or_path": a.name or os.path.basename(a.out.rstrip("/")),
        "architectures": ["BertModel"], "model_type": "bert", "hidden_act": "gelu",
        "hidden_size": hidden, "intermediate_size": int(tensors["encoder.layer.0.intermediate.dense.weight"].shape[0]),
        "num_hidden_layers": layers, "num_attention_heads": heads,
        "layer_norm_eps": float(str(np.float32(eps))), "max_position_embeddings": int(tensors["embeddings.position_embeddings.weight"].shape[0]),
        "type_vocab_size": int(tensors["embeddings.token_type_embeddings.weight"].shape[0]), "vocab_size": int(we.shape[0]),
        "pad_token_id": 0, "position_embedding_type": "absolute",
    }
    expected = 5 + 16 * layers
    if len(tensors) != expected:
        fail(f"found {len(tensors)} tensors, a {layers}-layer BERT has {expected}")

    tmp = a.out.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp + "/1_Pooling")
    save_file(dict(sorted(tensors.items())), tmp + "/model.safetensors", metadata={"format": "pt", "source": os.path.basename(a.onnx)})
    with open(tmp + "/config.json", "w") as f:
        json.dump(config, f, indent=2)
    for fn in TOKENIZER_FILES:
        src = os.path.join(a.tokenizer_from, fn)
        if os.path.exists(src):
            shutil.copy(src, tmp)
    if not os.path.exists(tmp + "/tokenizer.json") and not os.path.exists(tmp + "/vocab.txt"):
        fail(f"{a.tokenizer_from} has no tokenizer.json or vocab.txt")
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if a.normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
        os.makedirs(tmp + "/2_Normalize")
    with open(tmp + "/modules.json", "w") as f:
        json.dump(modules, f, indent=2)
    with open(tmp + "/sentence_bert_config.json", "w") as f:
        json.dump({"max_seq_length": a.max_seq_length, "do_lower_case": False}, f, indent=2)
    with open(tmp + "/1_Pooling/config.json", "w") as f:
        json.dump({"word_embedding_dimension": hidden, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
                   "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False}, f, indent=2)
    shutil.rmtree(a.out, ignore_errors=True)
    os.rename(tmp, a.out)
    print(f"{a.out}: {layers} layers, {hidden} dimensions, {heads} heads, {len(tensors)} tensors from {os.path.basename(a.onnx)}")


if __name__ == "__main__":
    main()
