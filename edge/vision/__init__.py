"""Face pipeline of the night pickup kiosk: MTCNN detection, dlib-style alignment, the dlib
ResNet embedding as ONNX, quality gates, liveness (MiniFASNet + head-turn challenge), consented
enrolment, 1:1 verification and restricted 1:N matching. Import submodules directly
(`edge.vision.embed`): this package imports nothing heavy so `edge --help` stays fast.
"""
