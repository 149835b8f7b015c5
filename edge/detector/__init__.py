"""Detector runtime: one ONNX session shared by all cameras, dynamic batching, both YOLO layouts."""

from edge.detector.runtime import Detections, OnnxDetector, letterbox, nms

__all__ = ["Detections", "OnnxDetector", "letterbox", "nms"]
