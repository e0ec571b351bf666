"""A siamese network with a contrastive loss on pairs of MNIST digits (the classic pattern of
pytorch/examples siamese_network and the contrastive-loss tutorials)."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets, transforms


class SiameseNetwork(nn.Module):
    def __init__(self):
        super(SiameseNetwork, self).__init__()
        self.cnn = nn.Sequential(
            nn.Conv2d(1, 8, kernel_size=3),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, stride=2),
            nn.Conv2d(8, 16, kernel_size=3),
            nn.BatchNorm2d(16),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, stride=2),
        )
        self.fc = nn.Sequential(
            nn.Linear(16 * 5 * 5, 64),
            nn.ReLU(inplace=True),
            nn.Linear(64, 16),
        )

    def forward_once(self, x):
        output = self.cnn(x)
        output = output.view(output.size()[0], -1)
        return self.fc(output)

    def forward(self, input1, input2):
        output1 = self.forward_once(input1)
        output2 = self.forward_once(input2)
        return output1, output2


class ContrastiveLoss(nn.Module):
    """Hadsell, Chopra and LeCun (2006): pull similar pairs together, push dissimilar ones past a margin."""

    def __init__(self, margin=2.0):
        super(ContrastiveLoss, self).__init__()
        self.margin = margin

    def forward(self, output1, output2, label):
        euclidean_distance = F.pairwise_distance(output1, output2, keepdim=True)
        loss_contrastive = torch.mean((1 - label) * torch.pow(euclidean_distance, 2) +
                                      label * torch.pow(torch.clamp(self.margin - euclidean_distance, min=0.0), 2))
        return loss_contrastive


class PairDataset(Dataset):
    """Pairs of digits: label 0 for the same class, 1 for different ones (half of each)."""

    def __init__(self, base, seed=0):
        self.base = base
        self.targets = np.asarray(base.targets)
        rng = np.random.RandomState(seed)
        self.pairs = []
        for i in range(len(base)):
            same = rng.rand() < 0.5
            pool = np.flatnonzero((self.targets == self.targets[i]) == same)
            pool = pool[pool != i] if pool.size > 1 else pool
            j = int(pool[rng.randint(len(pool))]) if pool.size else i
            self.pairs.append((i, j))

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, index):
        i, j = self.pairs[index]
        (img1, y1), (img2, y2) = self.base[i], self.base[j]
        return img1, img2, torch.tensor([float(y1 != y2)])


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument('--data', default='../data')
    parser.add_argument('--epochs', type=int, default=10)
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--lr', type=float, default=5e-4)
    parser.add_argument('--log-interval', type=int, default=10)
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    train = PairDataset(datasets.MNIST(args.data, train=True, download=True, transform=transform))
    test = PairDataset(datasets.MNIST(args.data, train=False, transform=transform), seed=1)
    train_loader = DataLoader(train, batch_size=args.batch_size, shuffle=True)
    test_loader = DataLoader(test, batch_size=args.batch_size)

    net = SiameseNetwork()
    criterion = ContrastiveLoss()
    optimizer = optim.Adam(net.parameters(), lr=args.lr)
    step = 0
    for epoch in range(args.epochs):
        net.train()
        for img0, img1, label in train_loader:
            optimizer.zero_grad()
            output1, output2 = net(img0, img1)
            loss_contrastive = criterion(output1, output2, label)
            loss_contrastive.backward()
            optimizer.step()
            if step % args.log_interval == 0:
                print(f"Epoch {epoch} step {step} current loss {loss_contrastive.item():.6f}")
            step += 1

        net.eval()
        total, correct = 0, 0
        with torch.no_grad():
            for img0, img1, label in test_loader:
                output1, output2 = net(img0, img1)
                distance = F.pairwise_distance(output1, output2)
                predicted = (distance > 1.0).float()
                correct += (predicted == label.squeeze(1)).sum().item()
                total += label.size(0)
        print(f"Epoch {epoch} pair accuracy {correct}/{total}")
