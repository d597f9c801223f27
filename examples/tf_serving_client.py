#!/usr/bin/env python3
"""Calls `rustflow serve` with TensorFlow Serving's own Python gRPC client.

Not run by CI. Needs `pip install tensorflow-serving-api` (which brings TensorFlow and
grpcio). Start the server first, e.g. with the digits model the main job saves:

    rustflow serve target/digits/model --name digits --grpc-port 8500
    python3 examples/tf_serving_client.py --model digits --input x --shape 1,64

It asks GetModelStatus (ModelService), GetModelMetadata and Predict (PredictionService)
through `PredictionServiceStub` / `ModelServiceStub`, exactly as against
`tensorflow_model_server`, and prints what it got. With `--regress SIGNATURE` or
`--classify SIGNATURE` it also sends Regress / Classify requests of tf.train.Examples with
one float feature (`--feature x`), and with both one MultiInference request running the two
over the same examples, e.g. against TensorFlow Serving's half_plus_two:

    rustflow serve graphs/tf_serving/saved_model_half_plus_two_cpu --name hp2 --grpc-port 8500
    python3 examples/tf_serving_client.py --model hp2 --shape 3,1 \
        --regress regress_x_to_y --classify classify_x_to_y
"""

import argparse

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--server", default="127.0.0.1:8500")
    p.add_argument("--model", default="digits")
    p.add_argument("--signature", default="serving_default")
    p.add_argument("--input", default="x", help="the signature's input key")
    p.add_argument("--shape", default="1,64", help="shape of the input fed (float32)")
    p.add_argument("--regress", metavar="SIGNATURE", help="also call Regress with it")
    p.add_argument("--classify", metavar="SIGNATURE", help="also call Classify with it")
    p.add_argument("--feature", default="x", help="the float feature of the examples")
    args = p.parse_args()

    channel = grpc.insecure_channel(args.server)
    models = model_service_pb2_grpc.ModelServiceStub(channel)
    predictions = prediction_service_pb2_grpc.PredictionServiceStub(channel)

    status_req = get_model_status_pb2.GetModelStatusRequest()
    status_req.model_spec.name = args.model
    print("GetModelStatus:", models.GetModelStatus(status_req, timeout=10))

    meta_req = get_model_metadata_pb2.GetModelMetadataRequest()
    meta_req.model_spec.name = args.model
    meta_req.metadata_field.append("signature_def")
    meta = predictions.GetModelMetadata(meta_req, timeout=10)
    sigs = get_model_metadata_pb2.SignatureDefMap()
    meta.metadata["signature_def"].Unpack(sigs)
    print("GetModelMetadata: version", meta.model_spec.version.value)
    for key, sig in sorted(sigs.signature_def.items()):
        print(f"  {key}: inputs {sorted(sig.inputs)} -> outputs {sorted(sig.outputs)}")

    shape = [int(d) for d in args.shape.split(",")]
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    req = predict_pb2.PredictRequest()
    req.model_spec.name = args.model
    req.model_spec.signature_name = args.signature
    req.inputs[args.input].CopyFrom(tf.make_tensor_proto(x))
    resp = predictions.Predict(req, timeout=10)
    print("Predict: model version", resp.model_spec.version.value)
    for key, t in sorted(resp.outputs.items()):
        print(f"  {key}: {tf.make_ndarray(t)}")

    for method, request, signature in [
        ("Regress", regression_pb2.RegressionRequest(), args.regress),
        ("Classify", classification_pb2.ClassificationRequest(), args.classify),
    ]:
        if not signature:
            continue
        request.model_spec.name = args.model
        request.model_spec.signature_name = signature
        add_examples(request.input, args.feature)
        print(f"{method}:", getattr(predictions, method)(request, timeout=10).result)

    if args.regress and args.classify:
        request = inference_pb2.MultiInferenceRequest()
        for signature, method in [(args.regress, "regress"), (args.classify, "classify")]:
            task = request.tasks.add()
            task.model_spec.name = args.model
            task.model_spec.signature_name = signature
            task.method_name = f"tensorflow/serving/{method}"
        add_examples(request.input, args.feature)
        print("MultiInference:", predictions.MultiInference(request, timeout=10))


def add_examples(input_, feature):
    """Three tf.train.Examples with `feature` = 1.0, 2.0, 5.0."""
    for value in [1.0, 2.0, 5.0]:
        example = input_.example_list.examples.add()
        example.features.feature[feature].float_list.value.append(value)


if __name__ == "__main__":
    main()
