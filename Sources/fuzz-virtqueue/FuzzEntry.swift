import Virtqueue
