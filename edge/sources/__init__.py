"""Frame sources: video files and network streams (RTSP/RTMP/HTTP via OpenCV's FFmpeg backend)."""

from edge.sources.video import Frame, FrameReader, SourceStats, VideoSource

__all__ = ["Frame", "FrameReader", "SourceStats", "VideoSource"]
